//! Parity of the planner with the reference's arithmetic: every selection and depth of the two
//! headline configurations, as Python 3 computes them.

use auglocal::model::{Arch, NetworkConfig};
use auglocal::plan::{LocalConfig, Plan, Rule};

fn plan(arch: Arch, k: usize, depth: usize) -> Plan {
    let network = NetworkConfig::new(arch).spec().expect("valid network");
    let config = LocalConfig::new(Rule::AugLocal, k)
        .with_depth(depth)
        .with_pyramid(Some(0.5));
    Plan::new(&network, &config).expect("valid plan")
}

fn depths_and_selections(plan: &Plan) -> (Vec<usize>, Vec<Vec<usize>>) {
    plan.aux_plans()
        .map(|a| (a.depth.expect("auglocal depth"), a.selected_units.clone()))
        .unzip()
}

// The expected values below were printed by this Python 3 transcription of the reference's
// formulas (LocalResNet.aux_depth_list and AuxNetwork's 'unifSamp' selection):
//
//     def plan(n, K, d, c):
//         L = K - d
//         depths = [max(1, round(d * (1 - (i * c) / (L - 2)) + (i * c) / (L - 2) * 1))
//                   for i in range(L - 1)]
//         out = []
//         for l in range(L - 1):
//             dl = depths[l]
//             if dl >= n - 1 - l:
//                 sel = list(range(l + 1, n))
//             else:
//                 sel = [round(l + (n - l - 1) / dl * i) for i in range(1, dl + 1)]
//             out.append((dl, sel))
//         return out
//
//     plan(16, 16, 2, 0.5); plan(55, 55, 3, 0.5)

#[test]
fn resnet32_k16_d2_pyramid_matches_python() {
    let (depths, selections) = depths_and_selections(&plan(Arch::ResNet32, 16, 2));
    assert_eq!(depths, vec![2; 13]);
    #[rustfmt::skip]
    let expected: Vec<Vec<usize>> = vec![
        vec![8, 15], vec![8, 15], vec![8, 15], vec![9, 15], vec![10, 15], vec![10, 15],
        vec![10, 15], vec![11, 15], vec![12, 15], vec![12, 15], vec![12, 15], vec![13, 15],
        vec![14, 15],
    ];
    assert_eq!(selections, expected);
}

#[test]
fn resnet110_k55_d3_pyramid_matches_python() {
    let (depths, selections) = depths_and_selections(&plan(Arch::ResNet110, 55, 3));
    let mut expected_depths = vec![3; 25];
    expected_depths.extend([2; 26]);
    assert_eq!(depths, expected_depths);
    #[rustfmt::skip]
    let expected: Vec<Vec<usize>> = vec![
        vec![18, 36, 54], vec![19, 36, 54], vec![19, 37, 54], vec![20, 37, 54], vec![21, 37, 54],
        vec![21, 38, 54], vec![22, 38, 54], vec![23, 38, 54], vec![23, 39, 54], vec![24, 39, 54],
        vec![25, 39, 54], vec![25, 40, 54], vec![26, 40, 54], vec![27, 40, 54], vec![27, 41, 54],
        vec![28, 41, 54], vec![29, 41, 54], vec![29, 42, 54], vec![30, 42, 54], vec![31, 42, 54],
        vec![31, 43, 54], vec![32, 43, 54], vec![33, 43, 54], vec![33, 44, 54], vec![34, 44, 54],
        vec![40, 54], vec![40, 54], vec![40, 54], vec![41, 54], vec![42, 54], vec![42, 54],
        vec![42, 54], vec![43, 54], vec![44, 54], vec![44, 54], vec![44, 54], vec![45, 54],
        vec![46, 54], vec![46, 54], vec![46, 54], vec![47, 54], vec![48, 54], vec![48, 54],
        vec![48, 54], vec![49, 54], vec![50, 54], vec![50, 54], vec![50, 54], vec![51, 54],
        vec![52, 54], vec![52, 54],
    ];
    assert_eq!(selections, expected);
}

#[test]
fn round_half_up_would_have_chosen_differently() {
    // The tie at unit 2 of ResNet-32 (d = 2) is exact in f64: 2 + (13 / 2) * 1 = 8.5.
    let tie = 2.0 + (13.0f64 / 2.0) * 1.0;
    assert_eq!(tie, 8.5);
    assert_eq!(tie.round(), 9.0, "ordinary rounding");
    let (_, selections) = depths_and_selections(&plan(Arch::ResNet32, 16, 2));
    assert_eq!(selections[2], vec![8, 15], "round half to even");
}
