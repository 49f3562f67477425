//! YOLOv4-tiny after darknet's `yolov4-tiny.cfg`: the CSP-Darknet53-tiny backbone (three CSP
//! blocks that route half of a layer's channels through two 3x3 convolutions), the 13x13 head
//! and the upsampled 26x26 head, 416x416 input, leaky ReLU 0.1, batch norm on every convolution
//! but the two 1x1 output layers.

use tch::nn::{self, ModuleT};
use tch::Tensor;

/// A darknet `[convolutional]` layer with `batch_normalize=1` and leaky activation.
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBn {
    fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> ConvBn {
        let cfg = nn::ConvConfig {
            stride,
            padding: k / 2,
            bias: false,
            ..Default::default()
        };
        ConvBn {
            conv: nn::conv2d(&p / "conv", c_in, c_out, k, cfg),
            bn: nn::batch_norm2d(&p / "bn", c_out, Default::default()),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = x.apply(&self.conv).apply_t(&self.bn, train);
        // darknet's leaky slope is 0.1 (libtorch's default is 0.01).
        y.maximum(&(&y * 0.1))
    }
}

/// One CSP block of the tiny backbone (cfg layers 2-8, 10-16, 18-24).
#[derive(Debug)]
struct CspBlock {
    c1: ConvBn,
    c2: ConvBn,
    c3: ConvBn,
    c4: ConvBn,
}

impl CspBlock {
    fn new(p: nn::Path, c_in: i64, c: i64) -> CspBlock {
        CspBlock {
            c1: ConvBn::new(&p / "c1", c_in, c, 3, 1),
            c2: ConvBn::new(&p / "c2", c / 2, c / 2, 3, 1),
            c3: ConvBn::new(&p / "c3", c / 2, c / 2, 3, 1),
            c4: ConvBn::new(&p / "c4", c, c, 1, 1),
        }
    }

    /// Returns the block's output (before the max-pool) and its 1x1 layer's output, which the
    /// second head routes from.
    fn forward(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let a = self.c1.forward(x, train);
        // route groups=2 group_id=1: the second half of the channels.
        let half = a.chunk(2, 1).swap_remove(1);
        let b = self.c2.forward(&half, train);
        let c = self.c3.forward(&b, train);
        let d = self.c4.forward(&Tensor::cat(&[&c, &b], 1), train);
        (Tensor::cat(&[&a, &d], 1), d)
    }
}

/// YOLOv4-tiny with `classes` classes (darknet: 80) and 3 anchors per cell.
#[derive(Debug)]
pub struct YoloV4Tiny {
    c0: ConvBn,
    c1: ConvBn,
    csp: [CspBlock; 3],
    c26: ConvBn,
    c27: ConvBn,
    c28: ConvBn,
    head1: nn::Conv2D,
    c32: ConvBn,
    c35: ConvBn,
    head2: nn::Conv2D,
    outputs: i64,
}

const ANCHORS_PER_CELL: i64 = 3;

impl YoloV4Tiny {
    /// Builds it under `p` with random weights.
    pub fn new(p: &nn::Path, classes: i64) -> YoloV4Tiny {
        let outputs = ANCHORS_PER_CELL * (5 + classes);
        let linear = nn::ConvConfig::default();
        YoloV4Tiny {
            c0: ConvBn::new(p / "c0", 3, 32, 3, 2),
            c1: ConvBn::new(p / "c1", 32, 64, 3, 2),
            csp: [
                CspBlock::new(p / "csp1", 64, 64),
                CspBlock::new(p / "csp2", 128, 128),
                CspBlock::new(p / "csp3", 256, 256),
            ],
            c26: ConvBn::new(p / "c26", 512, 512, 3, 1),
            c27: ConvBn::new(p / "c27", 512, 256, 1, 1),
            c28: ConvBn::new(p / "c28", 256, 512, 3, 1),
            head1: nn::conv2d(p / "head1", 512, outputs, 1, linear),
            c32: ConvBn::new(p / "c32", 256, 128, 1, 1),
            c35: ConvBn::new(p / "c35", 384, 256, 3, 1),
            head2: nn::conv2d(p / "head2", 256, outputs, 1, linear),
            outputs,
        }
    }

    /// darknet's `[yolo]` activations: logistic on x, y, objectness and classes, exp on w, h.
    /// (Offsets against the grid and anchors, and NMS, are post-processing, not timed here.)
    fn decode(&self, y: &Tensor) -> Tensor {
        let per_anchor = self.outputs / ANCHORS_PER_CELL;
        // Sizes stay tensor operations, so a traced copy takes any batch.
        let p = y
            .unflatten(1, [ANCHORS_PER_CELL, per_anchor])
            .permute([0, 1, 3, 4, 2]);
        let xy = p.narrow(4, 0, 2).sigmoid();
        let wh = p.narrow(4, 2, 2).exp();
        let rest = p.narrow(4, 4, per_anchor - 4).sigmoid();
        Tensor::cat(&[xy, wh, rest], 4).flatten(1, 3)
    }
}

impl ModuleT for YoloV4Tiny {
    /// `[B, 3, 416, 416]` in, `[B, 3 x (13x13 + 26x26), 5 + classes]` out.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let pool = |t: &Tensor| t.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let x = self.c1.forward(&self.c0.forward(x, train), train);
        let (x, _) = self.csp[0].forward(&x, train);
        let (x, _) = self.csp[1].forward(&pool(&x), train);
        let (x, route23) = self.csp[2].forward(&pool(&x), train);
        let x = self.c26.forward(&pool(&x), train);
        let x27 = self.c27.forward(&x, train);
        let y1 = self.c28.forward(&x27, train).apply(&self.head1);
        let up = self.c32.forward(&x27, train);
        let (h, w) = (up.size()[2], up.size()[3]);
        let up = up.upsample_nearest2d([2 * h, 2 * w], 2.0, 2.0);
        let y2 = self
            .c35
            .forward(&Tensor::cat(&[&up, &route23], 1), train)
            .apply(&self.head2);
        Tensor::cat(&[self.decode(&y1), self.decode(&y2)], 1)
    }
}
