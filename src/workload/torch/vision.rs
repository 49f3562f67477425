//! AlexNet, ResNet-18 and MobileNetV2 as torchvision (and the paper's PyTorch) builds them, with
//! torchvision's variable names.
//!
//! Why not `tch::vision` (0.24) as it stands:
//! - its AlexNet passes the second convolution's padding and stride swapped (padding 1, stride 2
//!   instead of 2 and 1): the same parameters but 0.26 instead of 0.71 G multiply-accumulates;
//! - its ResNet-18 and MobileNetV2 allocate a fresh tensor for every activation (ReLU6 is
//!   `relu()` then `clamp_max()`, two), where torchvision works in place; on a 2-core CPU that
//!   made tch::vision's MobileNetV2 at batch 32 run at 0.73x Python's throughput.
//!
//! The layouts here are otherwise tch::vision's, which are torchvision's.

use tch::nn::{self, ModuleT};
use tch::Tensor;

fn conv(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    k: i64,
    stride: i64,
    groups: i64,
    bias: bool,
) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding: (k - 1) / 2,
        groups,
        bias,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

fn relu(mut x: Tensor) -> Tensor {
    let _ = x.relu_();
    x
}

/// torchvision's `alexnet(num_classes)`.
pub fn alexnet(p: &nn::Path, classes: i64) -> impl ModuleT {
    let f = p / "features";
    let c = p / "classifier";
    let pool =
        |x: &Tensor| relu(x.shallow_clone()).max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
    let lin = |p: nn::Path, i, o| nn::linear(p, i, o, Default::default());
    let stem = nn::conv2d(
        &f / "0",
        3,
        64,
        11,
        nn::ConvConfig {
            stride: 4,
            padding: 2,
            ..Default::default()
        },
    );
    nn::seq_t()
        .add(stem)
        .add_fn(pool)
        .add(conv(&f / "3", 64, 192, 5, 1, 1, true))
        .add_fn(pool)
        .add(conv(&f / "6", 192, 384, 3, 1, 1, true))
        .add_fn(|x| relu(x.shallow_clone()))
        .add(conv(&f / "8", 384, 256, 3, 1, 1, true))
        .add_fn(|x| relu(x.shallow_clone()))
        .add(conv(&f / "10", 256, 256, 3, 1, 1, true))
        .add_fn(pool)
        .add_fn(|x| x.adaptive_avg_pool2d([6, 6]).flatten(1, -1))
        .add_fn_t(|x, train| x.dropout(0.5, train))
        .add(lin(&c / "1", 256 * 6 * 6, 4096))
        .add_fn(|x| relu(x.shallow_clone()))
        .add_fn_t(|x, train| x.dropout(0.5, train))
        .add(lin(&c / "4", 4096, 4096))
        .add_fn(|x| relu(x.shallow_clone()))
        .add(lin(&c / "6", 4096, classes))
}

/// A ResNet basic block.
#[derive(Debug)]
struct Basic {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    down: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Basic {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> Basic {
        Basic {
            conv1: conv(&p / "conv1", c_in, c_out, 3, stride, 1, false),
            bn1: bn(&p / "bn1", c_out),
            conv2: conv(&p / "conv2", c_out, c_out, 3, 1, 1, false),
            bn2: bn(&p / "bn2", c_out),
            down: (stride != 1 || c_in != c_out).then(|| {
                let d = &p / "downsample";
                (
                    conv(&d / "0", c_in, c_out, 1, stride, 1, false),
                    bn(&d / "1", c_out),
                )
            }),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = relu(x.apply(&self.conv1).apply_t(&self.bn1, train));
        let mut y = y.apply(&self.conv2).apply_t(&self.bn2, train);
        match &self.down {
            Some((c, b)) => y += x.apply(c).apply_t(b, train),
            None => y += x,
        }
        relu(y)
    }
}

/// torchvision's `resnet18(num_classes)`.
#[derive(Debug)]
pub struct ResNet18 {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    blocks: Vec<Basic>,
    fc: nn::Linear,
}

impl ResNet18 {
    /// Builds it under `p`.
    pub fn new(p: &nn::Path, classes: i64) -> ResNet18 {
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (i, c) in [64, 128, 256, 512].into_iter().enumerate() {
            let stride = if i == 0 { 1 } else { 2 };
            let l = p / format!("layer{}", i + 1);
            blocks.push(Basic::new(&l / "0", c_in, c, stride));
            blocks.push(Basic::new(&l / "1", c, c, 1));
            c_in = c;
        }
        let stem = nn::ConvConfig {
            stride: 2,
            padding: 3,
            bias: false,
            ..Default::default()
        };
        ResNet18 {
            conv1: nn::conv2d(p / "conv1", 3, 64, 7, stem),
            bn1: bn(p / "bn1", 64),
            blocks,
            fc: nn::linear(p / "fc", 512, classes, Default::default()),
        }
    }
}

impl ModuleT for ResNet18 {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut x = relu(x.apply(&self.conv1).apply_t(&self.bn1, train)).max_pool2d(
            [3, 3],
            [2, 2],
            [1, 1],
            [1, 1],
            false,
        );
        for b in &self.blocks {
            x = b.forward(&x, train);
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&self.fc)
    }
}

/// Convolution, batch norm, in-place ReLU6.
#[derive(Debug)]
struct ConvBnRelu6 {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBnRelu6 {
    fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, groups: i64) -> Self {
        ConvBnRelu6 {
            conv: conv(&p / "0", c_in, c_out, k, stride, groups, false),
            bn: bn(&p / "1", c_out),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.apply(&self.conv).apply_t(&self.bn, train);
        let _ = y.clamp_(0.0, 6.0);
        y
    }
}

/// An inverted residual block.
#[derive(Debug)]
struct Inverted {
    expand: Option<ConvBnRelu6>,
    depthwise: ConvBnRelu6,
    project: nn::Conv2D,
    bn: nn::BatchNorm,
    residual: bool,
}

impl Inverted {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64, expand: i64) -> Inverted {
        let hidden = c_in * expand;
        let p = &p / "conv";
        let first = if expand == 1 { 0 } else { 1 };
        Inverted {
            expand: (expand != 1).then(|| ConvBnRelu6::new(&p / "0", c_in, hidden, 1, 1, 1)),
            depthwise: ConvBnRelu6::new(&p / first, hidden, hidden, 3, stride, hidden),
            project: conv(&p / (first + 1), hidden, c_out, 1, 1, 1, false),
            bn: bn(&p / (first + 2), c_out),
            residual: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let h = match &self.expand {
            Some(e) => self.depthwise.forward(&e.forward(x, train), train),
            None => self.depthwise.forward(x, train),
        };
        let mut y = h.apply(&self.project).apply_t(&self.bn, train);
        if self.residual {
            y += x;
        }
        y
    }
}

/// torchvision's `mobilenet_v2(num_classes)` (width 1.0).
#[derive(Debug)]
pub struct MobileNetV2 {
    stem: ConvBnRelu6,
    blocks: Vec<Inverted>,
    last: ConvBnRelu6,
    classifier: nn::Linear,
}

/// (expansion, output channels, repeats, first stride), from the paper and torchvision.
const INVERTED_RESIDUALS: [(i64, i64, i64, i64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

impl MobileNetV2 {
    /// Builds it under `p`.
    pub fn new(p: &nn::Path, classes: i64) -> MobileNetV2 {
        let f = p / "features";
        let mut blocks = Vec::new();
        let mut c_in = 32;
        for (expand, c_out, n, stride) in INVERTED_RESIDUALS {
            for i in 0..n {
                let s = if i == 0 { stride } else { 1 };
                let id = blocks.len() + 1;
                blocks.push(Inverted::new(&f / id, c_in, c_out, s, expand));
                c_in = c_out;
            }
        }
        let last_id = blocks.len() + 1;
        MobileNetV2 {
            stem: ConvBnRelu6::new(&f / "0", 3, 32, 3, 2, 1),
            blocks,
            last: ConvBnRelu6::new(&f / last_id, c_in, 1280, 1, 1, 1),
            classifier: nn::linear(p / "classifier" / "1", 1280, classes, Default::default()),
        }
    }
}

impl ModuleT for MobileNetV2 {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut x = self.stem.forward(x, train);
        for b in &self.blocks {
            x = b.forward(&x, train);
        }
        self.last
            .forward(&x, train)
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .dropout(0.2, train)
            .apply(&self.classifier)
    }
}
