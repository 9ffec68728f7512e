//! Every relative link of the project's Markdown (`README.md`, `docs/`, the crates' READMEs,
//! `results/`, `vendor/`) points at a file that exists, and a link to a heading of a Markdown
//! file (`file.md#heading`, or `#heading` in the same file) at a heading that exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files checked.
fn markdown_files() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("vendor/README.md")];
    for dir in ["docs", "results"] {
        files.extend(markdown_in(&root.join(dir)));
    }
    for krate in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let readme = krate.expect("entry").path().join("README.md");
        if readme.is_file() {
            files.push(readme);
        }
    }
    files
}

fn markdown_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a folder of the repository") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(markdown_in(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
    found
}

/// The targets of the inline links `[text](target)` and reference definitions `[x]: target`
/// outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.to_string());
            rest = &after[end..];
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with('[')
            && let Some(i) = trimmed.find("]:")
            && let Some(target) = trimmed[i + 2..].split_whitespace().next()
        {
            targets.push(target.to_string());
        }
    }
    targets
}

fn without_code_spans(line: &str) -> String {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join("")
}

/// GitHub's anchor for a heading: lower case, code marks and punctuation dropped (but `-` and
/// `_`), spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn relative_links_point_at_files_and_headings_that_exist() {
    let mut broken = Vec::new();
    let files = markdown_files();
    assert!(files.len() > 10, "found only {files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable Markdown");
        for target in links(&text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, heading) = match target.split_once('#') {
                Some((path, heading)) => (path, Some(heading)),
                None => (target.as_str(), None),
            };
            let linked = match path {
                "" => file.clone(),
                path => file.parent().expect("a folder").join(path),
            };
            if !linked.exists() {
                broken.push(format!("{}: {target} (no such file)", file.display()));
                continue;
            }
            if let Some(heading) = heading
                && linked.extension().is_some_and(|e| e == "md")
            {
                let text = std::fs::read_to_string(&linked).expect("readable Markdown");
                if !anchors(&text).contains(heading) {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_links_anchors_and_breakage() {
    let text = "# Speed on CPU\n[a](docs/x.md#speed-on-cpu) and `[not](a link)`\n\
                ```\n[code](ignored.md)\n```\n[ref]: other.md\n## The `plan` command, 2\n";
    assert_eq!(links(text), vec!["docs/x.md#speed-on-cpu", "other.md"]);
    let found = anchors(text);
    assert!(found.contains("speed-on-cpu"), "{found:?}");
    assert!(found.contains("the-plan-command-2"), "{found:?}");
}
