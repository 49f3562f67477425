//! `edgetune models` and `edgetune devices`: what the catalogue holds, which board this is, and
//! the NVIDIA GPUs NVML sees.

use super::board::{live_board, BoardOptions};
use super::load_catalog;
use crate::backend::jetson::device_tree_model;
use crate::backend::nvml;
use crate::report::listing;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

/// Runs `models`: the catalogue's models with the paper's rows.
pub fn models(catalog_dir: Option<&Path>, json: bool, out: &mut dyn Write) -> Result<()> {
    let cat = load_catalog(catalog_dir)?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&listing::models_json(&cat))?
        )?;
    } else {
        write!(out, "{}", listing::models_text(&cat))?;
    }
    Ok(())
}

/// Runs `devices`: the catalogue's boards, which one (if any) this machine is, and its GPUs.
pub fn devices(
    catalog_dir: Option<&Path>,
    bo: &BoardOptions,
    explicit_root: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let cat = load_catalog(catalog_dir)?;
    let dt = device_tree_model(&bo.sysfs_root);
    let detected = cat.detect(dt.as_deref()).map(|b| b.board.id.clone());
    let live = live_board(bo, &cat, explicit_root)?;
    let is_here = |id: &str| detected.as_deref() == Some(id);
    let backends = |id: &str| match is_here(id) && live.is_some() {
        true => vec!["jetson", "sim"],
        false => vec!["sim"],
    };
    let gpus = nvml::gpus().unwrap_or_default();
    if json {
        let boards: Vec<_> = cat
            .boards
            .iter()
            .map(|b| listing::board_json(b, is_here(&b.board.id), &backends(&b.board.id)))
            .collect();
        let doc = serde_json::json!({ "this_machine": live, "gpus": gpus, "catalog": boards });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    if let Some(l) = &live {
        writeln!(out, "{}", listing::live_text(l))?;
    }
    let root = nvml::is_root();
    for g in &gpus {
        writeln!(out, "{}", listing::gpu_text(g, root))?;
    }
    if gpus.is_empty() {
        // Say so rather than nothing: NVML comes with the NVIDIA driver.
        writeln!(
            out,
            "NVIDIA GPUs: none found (NVML, libnvidia-ml.so.1 from the NVIDIA driver, is not here or lists none)"
        )?;
    }
    writeln!(out, "catalogue:")?;
    for b in &cat.boards {
        let text = listing::board_text(b, is_here(&b.board.id), &backends(&b.board.id));
        writeln!(out, "{text}")?;
    }
    if live.is_none() {
        writeln!(
            out,
            "this machine: {}",
            dt.map(|m| format!("`{m}`, not a board in the catalogue"))
                .unwrap_or_else(|| format!(
                    "not a Jetson (no {})",
                    bo.sysfs_root.join("proc/device-tree/model").display()
                ))
        )?;
    }
    Ok(())
}
