use super::*;
use crate::catalog::Catalog;
use crate::workload::NoMeter;

fn model(id: &str) -> Model {
    Catalog::load(None).unwrap().model(id).unwrap().clone()
}

#[test]
fn cuda_query_links_and_libtorch_cuda_is_loaded() {
    // Reaching this call at all means the binary linked and loaded libtorch.
    let available = tch::Cuda::is_available();
    let lib = Path::new(env!("EDGETUNE_LIBTORCH_LIB"));
    if lib.join("libtorch_cuda.so").exists() {
        // Linked with --no-as-needed, so it is mapped even though nothing names it.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(
            maps.contains("libtorch_cuda.so"),
            "libtorch_cuda.so is not loaded, so CUDA would be silently unavailable"
        );
    }
    if !available {
        assert!(matches!(
            parse_device("cuda:0"),
            Err(TorchError::NoCuda { .. })
        ));
    }
}

/// Each built model's output shape, its parameter count against models/*.toml (exactly) and
/// against the paper's row (within 15 %, like with like).
fn check_model(id: &str, batch: i64, out_shape: &[i64]) {
    let m = model(id);
    let built = m.built.as_ref().unwrap();
    let net = Net::build(&m, Device::Cpu).unwrap();
    assert_eq!(
        net.params(),
        built.params,
        "{id}: params in models/{id}.toml"
    );
    let compared = (built.params - built.params_not_in_paper) as f64 / 1e6;
    let dev = compared / m.paper.params_m - 1.0;
    assert!(
        dev.abs() <= 0.15,
        "{id}: {compared:.2} M parameters vs the paper's {} M ({:+.1} %)",
        m.paper.params_m,
        100.0 * dev
    );
    let out = net.forward(&net.make_input(batch)).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].size(), out_shape, "{id}: output shape");
    assert!(
        out[0].isfinite().all().int64_value(&[]) == 1,
        "{id}: non-finite output"
    );
}

#[test]
fn alexnet_builds_to_the_paper_row() {
    check_model("alexnet", 2, &[2, 1000]);
}

#[test]
fn resnet18_builds_to_the_paper_row() {
    check_model("resnet18", 2, &[2, 1000]);
}

#[test]
fn mobilenet_v2_builds_to_the_paper_row() {
    check_model("mobilenet-v2", 2, &[2, 1000]);
}

#[test]
fn yolov4_tiny_builds_to_the_paper_row() {
    // 3 anchors x (13x13 + 26x26) cells, 4 box terms + objectness + 80 classes.
    check_model("yolov4-tiny", 2, &[2, 3 * (13 * 13 + 26 * 26), 85]);
}

#[test]
fn bert_tiny_builds_to_the_paper_row() {
    check_model("bert-tiny", 2, &[2, 512, 128]);
}

#[test]
fn distilbert_builds_to_the_paper_row() {
    check_model("distilbert", 1, &[1, 512, 768]);
}

/// Counts the meter's calls and checks their order.
#[derive(Default)]
struct Calls(Vec<&'static str>);

impl Meter for Calls {
    fn begin(&mut self) -> Result<(), DeviceError> {
        self.0.push("begin");
        Ok(())
    }
    fn end(&mut self) -> Result<(), DeviceError> {
        self.0.push("end");
        Ok(())
    }
}

#[test]
fn a_run_opens_the_window_once_around_the_inferences() {
    let net = Net::build(&model("bert-tiny"), Device::Cpu).unwrap();
    let mut calls = Calls::default();
    // 5 inferences at batch 2: two full batches and one of 1.
    let t = net.run(2, 5, &mut calls, None).unwrap();
    assert_eq!(calls.0, ["begin", "end"]);
    assert!(t > 0.0);
    let mut w = TorchWorkload::new(net, None);
    let r = w.run(4, 4, &mut NoMeter).unwrap();
    assert!(r.time_s.unwrap() > 0.0);
    assert_eq!(w.name(), "bert-tiny");
}

#[test]
fn a_stop_request_ends_the_run_between_batches() {
    let net = Net::build(&model("bert-tiny"), Device::Cpu).unwrap();
    let stop = AtomicBool::new(true);
    let r = net.run(1, 10, &mut Calls::default(), Some(&stop));
    assert!(matches!(r, Err(DeviceError::Interrupted)));
}

#[test]
fn torchscript_round_trip_gives_the_same_network() {
    let m = model("bert-tiny");
    let net = Net::build(&m, Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bert-tiny.pt");
    net.save_torchscript(&path, 1).unwrap();
    let loaded = Net::load_torchscript(&path, net.input().clone(), Device::Cpu).unwrap();
    let x = net.make_input(2);
    let (a, b) = (net.forward(&x).unwrap(), loaded.forward(&x).unwrap());
    assert!(a[0].allclose(&b[0], 1e-5, 1e-5, false));
    // A shape the model cannot take fails the measurement instead of panicking.
    let wrong = Net::load_torchscript(&path, InputSpec::Float(vec![3, 8, 8]), Device::Cpu).unwrap();
    let r = wrong.run(1, 1, &mut Calls::default(), None);
    match r {
        Err(DeviceError::Workload(msg)) => {
            assert!(msg.contains("bert-tiny at batch size 1"), "{msg}")
        }
        other => panic!("expected a workload error, got {other:?}"),
    }
}

#[test]
fn bad_files_devices_and_shapes_are_explained() {
    let e = Net::load_torchscript(
        Path::new("/nonexistent.pt"),
        InputSpec::Float(vec![3]),
        Device::Cpu,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pt");
    std::fs::write(&junk, b"not a model").unwrap();
    let e = Net::load_torchscript(&junk, InputSpec::Float(vec![3]), Device::Cpu).unwrap_err();
    assert!(
        e.to_string().starts_with("cannot load TorchScript model"),
        "{e}"
    );
    assert!(matches!(parse_device("gpu"), Err(TorchError::BadDevice(_))));
    assert!(matches!(
        parse_device("cuda:x"),
        Err(TorchError::BadDevice(_))
    ));
    assert!(matches!(
        parse_device("cuda:99"),
        Err(TorchError::NoCuda { .. })
    ));
    assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
    assert_eq!(
        InputSpec::parse("3,224,224").unwrap(),
        InputSpec::Float(vec![3, 224, 224])
    );
    assert_eq!(
        InputSpec::parse("tokens:128").unwrap(),
        InputSpec::Tokens {
            len: 128,
            vocab: 30522
        }
    );
    for bad in ["", "3,x", "0,2", "tokens:", "tokens:8:0", "1,2,3,4,5"] {
        assert!(InputSpec::parse(bad).is_err(), "{bad}");
    }
    let mut m = model("resnet18");
    m.built = None;
    assert!(matches!(
        Net::build(&m, Device::Cpu),
        Err(TorchError::NotBuilt(_))
    ));
}

#[test]
fn on_cuda_every_model_runs_where_a_gpu_is_seen() {
    // Runs on the GPU test machine; on a machine without CUDA there is nothing to check beyond
    // the refusal tested above.
    if !tch::Cuda::is_available() {
        return;
    }
    let d = parse_device("cuda:0").unwrap();
    for id in [
        "alexnet",
        "resnet18",
        "mobilenet-v2",
        "yolov4-tiny",
        "bert-tiny",
        "distilbert",
    ] {
        let net = Net::build(&model(id), d).unwrap();
        let x = net.make_input(2);
        assert_eq!(x.device(), d);
        let out = net.forward(&x).unwrap();
        assert_eq!(out[0].device(), d, "{id}");
        let mut calls = Calls::default();
        let t = net.run(4, 10, &mut calls, None).unwrap();
        assert!(t > 0.0 && calls.0 == ["begin", "end"], "{id}");
    }
}
