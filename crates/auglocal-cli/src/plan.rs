//! `auglocal plan`: print the local-learning plan as a table or as JSON.

use anyhow::{Context, Result};
use auglocal_model::UnitKind;
use auglocal_plan::{AuxHeadPlan, AuxPlan, ModulePlan, Plan, StagePlan, StageSpec};
use clap::Args;
use comfy_table::{CellAlignment, Table, presets};

use crate::args::{LocalArgs, NetworkArgs};
use crate::format::{list, macs, ranges, ratio, thousands};

/// Flags of `auglocal plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    network: NetworkArgs,

    /// Number of classes of the primary head and of every auxiliary network [default: the
    /// family's: 10 for the CIFAR-size ResNets, 1000 for the ImageNet ResNets and VGG].
    #[arg(long)]
    classes: Option<usize>,

    #[command(flatten)]
    local: LocalArgs,

    /// Also cut the modules into S pipeline stages balanced by cost (as `train --pipeline S`)
    /// and print each stage's modules, units, cost and predicted busy fraction.
    #[arg(long, value_name = "S")]
    pipeline: Option<usize>,

    /// Print the plan as JSON instead of a table: the network's units, the configuration, each
    /// module with its units and aux net (depth, selected units, blocks, head, params, MACs),
    /// and the totals. docs/cli.md documents every field.
    #[arg(long)]
    json: bool,
}

/// Plans and prints.
pub fn run(args: &PlanArgs) -> Result<()> {
    let network = args.network.spec(args.classes)?;
    let local = args.local.settings();
    let plan = Plan::new(&network, &local.config(&network))?;
    if let Some(note) = args.local.note(local.rule) {
        eprintln!("note: {note}");
    }
    let stages = args
        .pipeline
        .map(|s| StagePlan::balance(&plan, s))
        .transpose()?;
    if args.json {
        let mut json = serde_json::to_value(&plan).context("serialising the plan")?;
        if let Some(stages) = &stages {
            json["pipeline"] = serde_json::json!({
                "stages": stages.stages,
                "predicted_busy": stages.predicted_busy(),
                "predicted_speedup": stages.predicted_speedup(),
            });
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{}", render(&plan));
        if let Some(stages) = &stages {
            print!("\n{}", render_stages(&plan, stages));
        }
    }
    Ok(())
}

/// An empty Markdown table with `header`.
pub fn markdown_table(header: Vec<&str>) -> Table {
    let mut table = Table::new();
    table.load_style(presets::ASCII_MARKDOWN).set_header(header);
    table
}

/// Right-aligns the numeric columns `columns`.
pub fn align_right(table: &mut Table, columns: &[usize]) {
    for &col in columns {
        if let Some(c) = table.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// The units of stage `stage`, first and last.
fn stage_units(plan: &Plan, stage: &StageSpec) -> (usize, usize) {
    (
        plan.modules[stage.first_module].first_unit,
        plan.modules[stage.last_module].last_unit,
    )
}

/// One line: each stage's modules and predicted busy fraction, and the predicted speed-up.
pub fn stages_line(plan: &Plan, stages: &StagePlan) -> String {
    let parts: Vec<String> = stages
        .stages
        .iter()
        .zip(stages.predicted_busy())
        .map(|(s, busy)| {
            let (a, b) = stage_units(plan, s);
            format!(
                "modules {}-{} (units {a}-{b}, {:.0}%)",
                s.first_module,
                s.last_module,
                100.0 * busy
            )
        })
        .collect();
    format!(
        "{} stages: {}; predicted {:.2}x sequential",
        stages.len(),
        parts.join(" | "),
        stages.predicted_speedup()
    )
}

/// The stages as a table, with the predicted balance.
pub fn render_stages(plan: &Plan, stages: &StagePlan) -> String {
    let mut table = markdown_table(vec![
        "stage",
        "modules",
        "units",
        "cost/image (MAC-equivalents)",
        "predicted busy",
    ]);
    for (i, (s, busy)) in stages
        .stages
        .iter()
        .zip(stages.predicted_busy())
        .enumerate()
    {
        let (a, b) = stage_units(plan, s);
        table.add_row(vec![
            i.to_string(),
            format!("{}-{}", s.first_module, s.last_module),
            format!("{a}-{b}"),
            macs(s.cost),
            format!("{:.0}%", 100.0 * busy),
        ]);
    }
    align_right(&mut table, &[3, 4]);
    format!(
        "pipeline of {} stages (train --pipeline {}): each stage on its own thread or device; \
         predicted speed-up {:.2}x over one stage\n\n{table}\n",
        stages.len(),
        stages.len(),
        stages.predicted_speedup()
    )
}

/// The plan as a header, one table row per module, and totals.
pub fn render(plan: &Plan) -> String {
    let net = &plan.network;
    let config = &plan.config;
    let mut out = format!(
        "{} ({} units, {} classes, {}x{} input), rule {}",
        net.arch,
        net.num_units(),
        net.num_classes,
        net.image_size,
        net.image_size,
        config.rule,
    );
    if config.rule != auglocal_plan::Rule::Bp {
        out += &format!(", K = {}", config.k);
    }
    if config.rule == auglocal_plan::Rule::AugLocal {
        let pyramid = config.pyramid.map_or("none".to_string(), |c| c.to_string());
        out += &format!(", d = {}, pyramid {pyramid}", config.depth);
    }
    let points = plan.isolation_points();
    out.push('\n');
    out += &if points.is_empty() {
        "1 module: end-to-end backprop, no isolation point\n\n".to_string()
    } else {
        format!(
            "{} gradient-isolated modules; gradients cut after unit{} {}\n\n",
            plan.num_modules(),
            if points.len() == 1 { "" } else { "s" },
            ranges(&points),
        )
    };

    let mut table = markdown_table(vec![
        "module",
        "units",
        "aux depth",
        "selected units",
        "aux net",
        "aux params",
        "aux MACs",
    ]);
    for m in &plan.modules {
        table.add_row(row(m));
    }
    align_right(&mut table, &[2, 5, 6]);
    out += &format!("{table}\n\n");

    let t = &plan.totals;
    let width = thousands(t.backbone.params.max(t.aux.params)).len();
    out += &format!(
        "backbone  {:>width$} params  {:>8} MACs/image\n",
        thousands(t.backbone.params),
        macs(t.backbone.macs),
    );
    out += &format!(
        "aux nets  {:>width$} params  {:>8} MACs/image  ({} the backbone's params, {} its MACs)\n",
        thousands(t.aux.params),
        macs(t.aux.macs),
        ratio(t.aux_param_ratio),
        ratio(t.aux_mac_ratio),
    );
    out
}

fn row(m: &ModulePlan) -> Vec<String> {
    let units = if m.first_unit == m.last_unit {
        m.first_unit.to_string()
    } else {
        format!("{}-{}", m.first_unit, m.last_unit)
    };
    match &m.aux {
        Some(aux) => vec![
            m.index.to_string(),
            units,
            aux.depth.map_or("-".to_string(), |d| d.to_string()),
            if aux.selected_units.is_empty() {
                "-".to_string()
            } else {
                list(&aux.selected_units)
            },
            describe(aux),
            thousands(aux.cost.params),
            macs(aux.cost.macs),
        ],
        None => vec![
            m.index.to_string(),
            units,
            "-".into(),
            "-".into(),
            "primary head (output loss)".into(),
            "-".into(),
            "-".into(),
        ],
    }
}

/// `16->32 s2, 32->64 s2, GAP+FC`; Bottlenecks `bottleneck 64->512 s2`, VGG units
/// `pool, conv 64->256`.
fn describe(aux: &AuxPlan) -> String {
    let mut parts: Vec<String> = aux
        .blocks
        .iter()
        .map(|b| match b.kind {
            UnitKind::Bottleneck { .. } => {
                format!("bottleneck {}->{} s{}", b.in_width, b.out_width, b.stride)
            }
            UnitKind::VggConv { max_pool } => format!(
                "{}conv {}->{}",
                if max_pool { "pool, " } else { "" },
                b.in_width,
                b.out_width
            ),
            _ => format!("{}->{} s{}", b.in_width, b.out_width, b.stride),
        })
        .collect();
    parts.push(match &aux.head {
        AuxHeadPlan::Linear(h) if h.batch_norm => "GAP+BN+FC".into(),
        AuxHeadPlan::Linear(_) => "GAP+FC".into(),
        AuxHeadPlan::Dgl(h) => format!(
            "DGL head (pool {}, 3 conv1x1, pool {}, MLP {})",
            h.pool_size(),
            h.mlp_pool_size(),
            h.hidden()
        ),
        AuxHeadPlan::Mlp(h) => format!("pool {0}+MLP {0}", h.features),
        AuxHeadPlan::PredSim(h) => {
            let [kh, kw] = h.pool().kernel;
            format!(
                "PredSim: {} x sim(conv3x3) + {} x CE(pool {kh}x{kw}+FC {})",
                h.similarity_weight,
                h.prediction_weight,
                h.features()
            )
        }
        AuxHeadPlan::InfoPro(h) => format!(
            "InfoPro: {} x BCE(decoder {}->{}->{}) + {} x CE(conv {}->{} s{}+MLP {})",
            weight(h.reconstruction_weight),
            h.width,
            auglocal_plan::nets::infopro::INFOPRO_DECODER_WIDTH,
            h.image_channels,
            weight(h.classification_weight),
            h.width,
            h.classifier_width,
            h.classifier_stride,
            auglocal_plan::nets::infopro::INFOPRO_HIDDEN,
        ),
    });
    parts.join(", ")
}

/// A loss weight with at most 3 decimals, trailing zeros dropped (`2.6`, `0.207`, `5`).
fn weight(w: f64) -> String {
    let s = format!("{w:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
