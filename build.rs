//! Embeds the catalogue (search-spaces/*.toml, models/*.toml) into the binary, so that an installed
//! `edgetune` works from any directory. The files stay the single source of the data; `--catalog DIR`
//! or `EDGETUNE_CATALOG` reads them from disk instead.
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
}
