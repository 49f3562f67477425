//! Embeds the catalogue (search-spaces/*.toml, models/*.toml) into the binary, so that an installed
//! `edgetune` works from any directory. The files stay the single source of the data; `--catalog DIR`
//! or `EDGETUNE_CATALOG` reads them from disk instead.
//!
//! With the `torch` feature it also fixes how libtorch is linked: tch's plain link lets the
//! linker drop `libtorch_cuda.so` (nothing references it by name), so CUDA is silently
//! unavailable (tch-rs issue 980). Here it is linked with `--no-as-needed`, and an rpath to
//! libtorch's folder lets the binary start without `LD_LIBRARY_PATH` on the machine that built it.
use std::{env, fs, path::Path};

fn main() {
    let root = env::var("CARGO_MANIFEST_DIR").unwrap();
    let mut out = String::new();
    for dir in ["search-spaces", "models"] {
        println!("cargo:rerun-if-changed={dir}");
        let mut files: Vec<_> = fs::read_dir(Path::new(&root).join(dir))
            .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let name = if dir == "models" { "MODELS" } else { "BOARDS" };
        out.push_str(&format!(
            "/// Path and contents of every file in {dir}/ when edgetune was built.\npub static EMBEDDED_{name}: &[(&str, &str)] = &[\n"
        ));
        for f in files {
            println!("cargo:rerun-if-changed={}", f.display());
            let rel = format!("{dir}/{}", f.file_name().unwrap().to_string_lossy());
            out.push_str(&format!(
                "    ({rel:?}, include_str!({:?})),\n",
                f.display().to_string()
            ));
        }
        out.push_str("];\n");
    }
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("catalog_files.rs"),
        out,
    )
    .unwrap();
    if env::var_os("CARGO_FEATURE_TORCH").is_some() {
        link_libtorch();
    }
}

fn link_libtorch() {
    // torch-sys (`links = "tch"`) passes the folder it linked against.
    let Ok(lib) = env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report libtorch's folder; CUDA may be unavailable (see scripts/setup-torch.sh)");
        return;
    };
    println!("cargo:rustc-env=EDGETUNE_LIBTORCH_LIB={lib}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if cfg!(target_os = "linux") && Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
