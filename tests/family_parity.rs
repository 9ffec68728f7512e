//! Parity of the ImageNet families with the reference (`exp_imagenet/`) and torchvision:
//! backbone parameter counts, AugLocal's selections, aux blocks and aux parameter counts for
//! every published setting (ResNet-34 K=17 d=4, ResNet-101 K=34 d=3, VGG-13 K=10 d=2, constant
//! depth, no K - d subtraction).

use auglocal::model::{Arch, NetworkConfig, UnitKind};
use auglocal::plan::{LocalConfig, Plan, Rule};

fn imagenet(arch: Arch) -> auglocal::model::NetworkSpec {
    NetworkConfig::new(arch)
        .with_num_classes(1000)
        .spec()
        .expect("valid network")
}

fn published(arch: Arch, k: usize, depth: usize) -> Plan {
    let config = LocalConfig::new(Rule::AugLocal, k)
        .with_depth(depth)
        .with_pyramid(None);
    Plan::new(&imagenet(arch), &config).expect("valid plan")
}

#[test]
fn backbones_have_torchvisions_parameter_counts() {
    // sum(p.numel() for p in torchvision.models.<arch>().parameters()), 1000 classes.
    for (arch, params) in [
        (Arch::ResNet18, 11_689_512),
        (Arch::ResNet34, 21_797_672),
        (Arch::ResNet50, 25_557_032),
        (Arch::ResNet101, 44_549_160),
        (Arch::ResNet152, 60_192_808),
        (Arch::Vgg11, 132_868_840),
        (Arch::Vgg13, 133_053_736),
        (Arch::Vgg16, 138_365_992),
        (Arch::Vgg19, 143_678_248),
    ] {
        let network = imagenet(arch);
        assert_eq!(network.cost().params, params, "{arch}");
        assert_eq!(network.image_size, 224, "{arch}");
        assert_eq!(
            network.units.last().map(|u| u.out_size),
            Some(if arch.name().starts_with("vgg") {
                14
            } else {
                7
            }),
            "{arch}"
        );
    }
}

// The selections below were printed by this Python 3 transcription of the reference's rule
// (constant depth, isolation points after units 0 .. K-2):
//
//     def sel(n, d):
//         return [list(range(l + 1, n)) if d >= n - 1 - l
//                 else [round(l + (n - l - 1) / d * i) for i in range(1, d + 1)]
//                 for l in range(n - 1)]
//
//     sel(17, 4); sel(34, 3); sel(10, 2)

/// `(kind, in_width, out_width, stride)` of the first aux net's blocks.
fn first_blocks(plan: &Plan) -> Vec<(UnitKind, usize, usize, usize)> {
    let first = plan.aux_plans().next().expect("an aux net");
    first
        .blocks
        .iter()
        .map(|b| (b.kind, b.in_width, b.out_width, b.stride))
        .collect()
}

fn selections(plan: &Plan) -> Vec<Vec<usize>> {
    plan.aux_plans().map(|a| a.selected_units.clone()).collect()
}

#[test]
fn resnet34_k17_d4_matches_the_reference() {
    let plan = published(Arch::ResNet34, 17, 4);
    assert_eq!(plan.num_modules(), 17, "no K - d subtraction on ImageNet");
    assert_eq!(plan.isolation_points(), (0..16).collect::<Vec<_>>());
    #[rustfmt::skip]
    let expected: Vec<Vec<usize>> = vec![
        vec![4, 8, 12, 16], vec![5, 8, 12, 16], vec![6, 9, 12, 16], vec![6, 10, 13, 16],
        vec![7, 10, 13, 16], vec![8, 10, 13, 16], vec![8, 11, 14, 16], vec![9, 12, 14, 16],
        vec![10, 12, 14, 16], vec![11, 12, 14, 16], vec![12, 13, 14, 16], vec![12, 14, 15, 16],
        vec![13, 14, 15, 16], vec![14, 15, 16], vec![15, 16], vec![16],
    ];
    assert_eq!(selections(&plan), expected);
    let blocks = first_blocks(&plan);
    let basic = UnitKind::BasicBlock;
    assert_eq!(
        blocks,
        vec![
            (basic, 64, 128, 2),
            (basic, 128, 256, 2),
            (basic, 256, 256, 1),
            (basic, 256, 512, 2)
        ]
    );
    let first = plan.aux_plans().next().expect("an aux net");
    assert_eq!(first.cost.params, 6_515_944);
    // GAP + Linear(512, classes) ends every aux net, never with a BatchNorm1d.
    for aux in plan.aux_plans() {
        let auglocal::plan::AuxHeadPlan::Linear(head) = &aux.head else {
            panic!("ResNet aux heads are linear")
        };
        assert!(!head.batch_norm && head.width == 512);
    }
}

#[test]
fn resnet101_k34_d3_builds_bottlenecks_of_the_selected_planes() {
    let plan = published(Arch::ResNet101, 34, 3);
    assert_eq!(plan.num_modules(), 34);
    let s = selections(&plan);
    assert_eq!(s[0], vec![11, 22, 33]);
    assert_eq!(s[16], vec![22, 27, 33]);
    assert_eq!(s[31..], [vec![32, 33], vec![33]]);
    let blocks = first_blocks(&plan);
    // Unit 0 reads the stem's 64 channels at 56x56; units 11 and 22 are 256-plane blocks at
    // 14x14 (two halvings: one per block), unit 33 a 512-plane block at 7x7.
    assert_eq!(
        blocks,
        vec![
            (UnitKind::Bottleneck { planes: 256 }, 64, 1024, 2),
            (UnitKind::Bottleneck { planes: 256 }, 1024, 1024, 2),
            (UnitKind::Bottleneck { planes: 512 }, 1024, 2048, 2),
        ]
    );
    // The aux nets hold ~363M parameters against the 44.5M backbone.
    assert_eq!(plan.totals.aux.params, 363_376_872);
}

#[test]
fn vgg13_k10_d2_pools_where_the_width_changes() {
    let plan = published(Arch::Vgg13, 10, 2);
    assert_eq!(plan.num_modules(), 10);
    #[rustfmt::skip]
    let expected: Vec<Vec<usize>> = vec![
        vec![4, 9], vec![5, 9], vec![6, 9], vec![6, 9], vec![6, 9], vec![7, 9], vec![8, 9],
        vec![8, 9], vec![9],
    ];
    assert_eq!(selections(&plan), expected);
    // Pool, conv 64 -> 256, pool, conv 256 -> 512; then the 512-wide MLP head.
    let pool = UnitKind::VggConv { max_pool: true };
    assert_eq!(
        first_blocks(&plan),
        vec![(pool, 64, 256, 1), (pool, 256, 512, 1)]
    );
    let first = plan.aux_plans().next().expect("an aux net");
    // conv 147,712 + BN 512, conv 1,180,160 + BN 1,024, MLP 2 x (262,656 + 1,024) + 513,000.
    assert_eq!(first.cost.params, 2_369_768);
    // Unit 6 (512 wide at 28x28) selects units 8 and 9 (512 wide at 14x14): no width change,
    // so no pool, as the reference builds it.
    let unit6 = plan.aux_plans().nth(6).expect("aux net of unit 6");
    assert!(
        unit6
            .blocks
            .iter()
            .all(|b| b.kind == UnitKind::VggConv { max_pool: false } && b.out_size == 28)
    );
}

#[test]
fn dgl_and_greedy_plan_every_family() {
    for arch in Arch::ALL {
        let network = NetworkConfig::new(arch).spec().expect("valid network");
        for rule in [Rule::Greedy, Rule::Dgl] {
            let plan = Plan::new(&network, &LocalConfig::new(rule, network.num_units()))
                .expect("valid plan");
            assert_eq!(plan.num_modules(), network.num_units(), "{arch} {rule}");
        }
    }
}
