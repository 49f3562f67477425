//! The example Kubernetes manifest is checked against the API's schemas by a real validator
//! (kubernetes-validate, installed by scripts/setup-kube-validate.sh; `EDGETUNE_KUBE_VALIDATE`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn validator() -> Option<PathBuf> {
    match std::env::var("EDGETUNE_KUBE_VALIDATE") {
        Ok(p) => Some(PathBuf::from(p)),
        Err(_) => {
            assert!(
                std::env::var("EDGETUNE_REQUIRE_KUBE_VALIDATE").is_err(),
                "EDGETUNE_KUBE_VALIDATE is not set: scripts/test.sh installs the validator"
            );
            eprintln!("EDGETUNE_KUBE_VALIDATE not set: run scripts/test.sh to check the manifest");
            None
        }
    }
}

fn validate(v: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(v).arg("--strict").arg(file).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_worker_manifest_passes_the_kubernetes_schema_and_a_broken_one_does_not() {
    let Some(v) = validator() else { return };
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/edgetune-workers.yaml");
    let (ok, text) = validate(&v, &manifest);
    assert!(ok, "{text}");
    assert!(text.contains("passed"), "{text}");
    let yaml = std::fs::read_to_string(&manifest).unwrap();
    // What a worker on a board needs: root with a writable /sys, one pod per node, the study.
    for needed in [
        "privileged: true",
        "path: /sys",
        "topologyKey: kubernetes.io/hostname",
        "- worker",
        "--backend",
        "jetson",
        "--board-id",
    ] {
        assert!(yaml.contains(needed), "the manifest lacks {needed}");
    }
    // The validator can fail: a misspelt field is refused.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, yaml.replace("parallelism:", "paralelism:")).unwrap();
    let (ok, text) = validate(&v, &broken);
    assert!(!ok, "a misspelt field passed: {text}");
}
