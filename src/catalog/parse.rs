//! Reading the catalogue's TOML files: parsing, the checks every value gets (named by file,
//! field and line), and the catalogue assembled from its sources.

use super::*;

/// 1-based line of a dotted field path (`twin.gpu.cores`, `cpu.clusters[1].cpus`) in a TOML
/// source, or 0 when it cannot be found.
pub fn line_of(src: &str, path: &str) -> usize {
    let Ok(doc) = toml_edit::Document::parse(src) else {
        return 0;
    };
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut offset = None;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((k, v)) = table.get_key_value(key) else {
            break;
        };
        offset = k.span().map(|s| s.start).or(offset);
        let next = match index {
            Some(i) => v.as_array_of_tables().and_then(|a| a.get(i)).map(|t| {
                offset = t.span().map(|s| s.start).or(offset);
                t as &dyn toml_edit::TableLike
            }),
            None => v.as_table_like(),
        };
        match next {
            Some(t) => table = t,
            None => break,
        }
    }
    offset.map(|o| line_at(src, o)).unwrap_or(0)
}

fn line_at(src: &str, byte: usize) -> usize {
    src[..byte.min(src.len())].matches('\n').count() + 1
}

/// Checks collected while validating one file: `(field path, message)`.
struct Checks<'a> {
    file: &'a str,
    src: &'a str,
}

/// Largest value of a twin or model parameter (mW, MHz, cores, GB/s, megacycles...): far above
/// any board's, far below where the twin's arithmetic overflows.
const MAX_PARAMETER: f64 = 1e9;

impl Checks<'_> {
    fn fail(&self, field: &str, message: impl Into<String>) -> CatalogError {
        CatalogError::Invalid {
            file: self.file.to_string(),
            line: line_of(self.src, field),
            field: field.to_string(),
            message: message.into(),
        }
    }
    // Bounded above too: 1e308 mW is finite, but the twin's energy from it is not.
    fn positive(&self, field: &str, v: f64) -> Result<(), CatalogError> {
        if v.is_finite() && v > 0.0 && v <= MAX_PARAMETER {
            Ok(())
        } else {
            Err(self.fail(
                field,
                format!("must be a positive number, at most {MAX_PARAMETER:e}, got {v}"),
            ))
        }
    }
    fn non_negative(&self, field: &str, v: f64) -> Result<(), CatalogError> {
        if v.is_finite() && (0.0..=MAX_PARAMETER).contains(&v) {
            Ok(())
        } else {
            Err(self.fail(
                field,
                format!("must be zero or more, at most {MAX_PARAMETER:e}, got {v}"),
            ))
        }
    }
    /// What generated scripts and configs write as names (a sysfs device, an nvpmodel PARAM, the
    /// board's name in their comments) is what sysfs and nvpmodel allow: nothing a shell or
    /// nvpmodel.conf would read as more than a name.
    fn names(&self, b: &Board) -> Result<(), CatalogError> {
        let sysfs = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
        };
        let param = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_uppercase())
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        };
        if !sysfs(&b.gpu.devfreq) {
            return Err(self.fail(
                "gpu.devfreq",
                format!(
                    "`{}` is not a sysfs device name ([A-Za-z0-9._:-])",
                    b.gpu.devfreq
                ),
            ));
        }
        let params = b.cpu.clusters.iter().map(|c| &c.nvpmodel_param);
        for (field, p) in std::iter::once(("gpu.nvpmodel_param", &b.gpu.nvpmodel_param))
            .chain(params.map(|p| ("cpu.clusters.nvpmodel_param", p)))
        {
            if !param(p) {
                return Err(self.fail(
                    field,
                    format!("`{p}` is not an nvpmodel PARAM name ([A-Z0-9_])"),
                ));
            }
        }
        if b.board.name.chars().any(char::is_control) || b.board.name.len() > 200 {
            return Err(self.fail("board.name", "must be one line of at most 200 characters"));
        }
        Ok(())
    }
    fn fraction(&self, field: &str, v: f64, allow_zero: bool) -> Result<(), CatalogError> {
        let ok = v.is_finite() && v <= 1.0 && (v > 0.0 || (allow_zero && v == 0.0));
        if ok {
            Ok(())
        } else {
            let range = if allow_zero { "[0, 1]" } else { "(0, 1]" };
            Err(self.fail(field, format!("must lie in {range}, got {v}")))
        }
    }
    fn ascending<T: PartialOrd + Copy + std::fmt::Display>(
        &self,
        field: &str,
        values: &[T],
    ) -> Result<(), CatalogError> {
        if values.is_empty() {
            return Err(self.fail(field, "must not be empty"));
        }
        for w in values.windows(2) {
            if w[1] <= w[0] {
                return Err(self.fail(
                    field,
                    format!("must be strictly ascending, but {} follows {}", w[1], w[0]),
                ));
            }
        }
        Ok(())
    }
    fn curve(&self, field: &str, points: &[[f64; 2]]) -> Result<(), CatalogError> {
        let mhz: Vec<f64> = points.iter().map(|p| p[0]).collect();
        self.ascending(field, &mhz)?;
        for p in points {
            if !(p[0] > 0.0 && p[1] > 0.0 && p[1].is_finite()) {
                return Err(self.fail(field, format!("point {:?} must be positive", p)));
            }
        }
        Ok(())
    }
}

impl Checks<'_> {
    /// The twin's parameters of a board file (`[twin]` and its tables).
    fn twin(&self, t: &BoardTwin) -> Result<(), CatalogError> {
        let c = self;
        c.positive("twin.base_power_mw", t.base_power_mw)?;
        c.positive("twin.dram_bandwidth_gbps", t.dram_bandwidth_gbps)?;
        c.non_negative("twin.dram_mw_per_gbps", t.dram_mw_per_gbps)?;
        c.fraction("twin.noise_cv", t.noise_cv, true)?;
        c.fraction("twin.background_core_util", t.background_core_util, true)?;
        c.fraction("twin.idle_leak_share", t.idle_leak_share, true)?;
        let w = &t.measurement;
        c.positive("twin.measurement.sensor_refresh_s", w.sensor_refresh_s)?;
        c.positive("twin.measurement.poll_s", w.poll_s)?;
        c.fraction("twin.measurement.settle_bias", w.settle_bias, true)?;
        c.positive("twin.measurement.settle_tau_s", w.settle_tau_s)?;
        let r = &t.rough;
        c.fraction("twin.rough.config_sd", r.config_sd, true)?;
        c.fraction("twin.rough.value_sd", r.value_sd, true)?;
        c.fraction("twin.rough.dip_share", r.dip_share, true)?;
        c.fraction("twin.rough.bump_share", r.bump_share, true)?;
        for (field, [lo, hi]) in [
            ("twin.rough.dip_depth", r.dip_depth),
            ("twin.rough.bump_height", r.bump_height),
        ] {
            c.fraction(field, lo, true)?;
            c.fraction(field, hi, true)?;
            if lo > hi {
                return Err(c.fail(field, "the first value must not exceed the second"));
            }
        }
        c.positive("twin.gpu.cores", t.gpu.cores as f64)?;
        c.positive("twin.gpu.flops_per_core_cycle", t.gpu.flops_per_core_cycle)?;
        c.positive("twin.gpu.dyn_mw_per_mhz_v2", t.gpu.dyn_mw_per_mhz_v2)?;
        c.fraction(
            "twin.gpu.mem_stall_activity",
            t.gpu.mem_stall_activity,
            true,
        )?;
        c.non_negative("twin.gpu.leak_mw_at_1v", t.gpu.leak_mw_at_1v)?;
        c.curve("twin.gpu.voltage_mv_by_mhz", &t.gpu.voltage_mv_by_mhz)?;
        c.positive("twin.gpu.v_min_mv", t.gpu.v_min_mv)?;
        c.positive("twin.cpu.cores", t.cpu.cores as f64)?;
        c.positive("twin.cpu.dyn_mw_per_mhz_v2", t.cpu.dyn_mw_per_mhz_v2)?;
        c.non_negative("twin.cpu.leak_mw_at_1v", t.cpu.leak_mw_at_1v)?;
        c.curve("twin.cpu.voltage_mv_by_mhz", &t.cpu.voltage_mv_by_mhz)?;
        c.positive("twin.cpu.v_min_mv", t.cpu.v_min_mv)?;
        c.fraction(
            "twin.dvfs.cpu_top_residency",
            t.dvfs.cpu_top_residency,
            false,
        )?;
        c.fraction(
            "twin.dvfs.gpu_top_residency",
            t.dvfs.gpu_top_residency,
            false,
        )?;
        if t.dvfs.spread_steps == 0 {
            return Err(c.fail("twin.dvfs.spread_steps", "must be at least 1"));
        }
        Ok(())
    }
}

impl Board {
    /// Parses and validates a board file.
    pub fn parse(file: &str, src: &str) -> Result<Board, CatalogError> {
        let mut b: Board = toml::from_str(src).map_err(|e| CatalogError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        b.file = file.to_string();
        let c = Checks { file, src };
        if b.board.id.trim().is_empty() {
            return Err(c.fail("board.id", "must not be empty"));
        }
        if b.board.detect_model.is_empty() {
            return Err(c.fail("board.detect_model", "must list at least one model string"));
        }
        c.ascending("cpu.frequencies_khz", &b.cpu.frequencies_khz)?;
        if b.cpu.frequencies_khz[0] == 0 {
            return Err(c.fail("cpu.frequencies_khz", "frequencies must be positive"));
        }
        c.ascending("gpu.frequencies_hz", &b.gpu.frequencies_hz)?;
        if b.gpu.frequencies_hz[0] == 0 {
            return Err(c.fail("gpu.frequencies_hz", "frequencies must be positive"));
        }
        if b.cpu.clusters.is_empty() {
            return Err(c.fail("cpu.clusters", "must list at least one cluster"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, cl) in b.cpu.clusters.iter().enumerate() {
            if cl.cpus.is_empty() {
                return Err(c.fail(&format!("cpu.clusters[{i}].cpus"), "must not be empty"));
            }
            for cpu in &cl.cpus {
                if !seen.insert(*cpu) {
                    return Err(c.fail(
                        &format!("cpu.clusters[{i}].cpus"),
                        format!("cpu{cpu} is already in another cluster"),
                    ));
                }
            }
        }
        c.names(&b)?;
        if let Some(t) = b.sensors.total_rail.as_ref() {
            if !b.sensors.rails.contains(t) {
                return Err(c.fail(
                    "sensors.total_rail",
                    format!("`{t}` is not one of the rails {:?}", b.sensors.rails),
                ));
            }
        }
        c.twin(&b.twin)?;
        Ok(b)
    }
}

impl Model {
    /// Parses and validates a model file.
    pub fn parse(file: &str, src: &str) -> Result<Model, CatalogError> {
        let mut m: Model = toml::from_str(src).map_err(|e| CatalogError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        m.file = file.to_string();
        let c = Checks { file, src };
        if m.model.id.trim().is_empty() {
            return Err(c.fail("model.id", "must not be empty"));
        }
        c.ascending("paper.batch_sizes", &m.paper.batch_sizes)?;
        if m.paper.batch_sizes[0] == 0 {
            return Err(c.fail("paper.batch_sizes", "batch sizes must be at least 1"));
        }
        c.positive("paper.gflops", m.paper.gflops)?;
        c.positive("paper.params_m", m.paper.params_m)?;
        // The twin multiplies these into times and energies: keep them physical.
        if m.paper.gflops > 1e6 {
            return Err(c.fail(
                "paper.gflops",
                format!(
                    "must be at most 1e6 GFLOPs per inference, got {}",
                    m.paper.gflops
                ),
            ));
        }
        for (board, t) in &m.twin {
            let f = |name: &str| format!("twin.{board}.{name}");
            if !(t.gpu_efficiency > 0.0 && t.gpu_efficiency <= 8.0) {
                return Err(c.fail(
                    &f("gpu_efficiency"),
                    format!(
                        "must lie in (0, 8] (achieved FLOP/s over the FP32 peak), got {}",
                        t.gpu_efficiency
                    ),
                ));
            }
            c.non_negative(&f("batch_half"), t.batch_half)?;
            c.non_negative(&f("weights_mb"), t.weights_mb)?;
            c.non_negative(
                &f("activations_mb_per_inference"),
                t.activations_mb_per_inference,
            )?;
            c.non_negative(&f("cpu_mcycles_per_inference"), t.cpu_mcycles_per_inference)?;
            c.non_negative(&f("cpu_mcycles_per_batch"), t.cpu_mcycles_per_batch)?;
            c.fraction(&f("overlap"), t.overlap, true)?;
            c.fraction(&f("spin"), t.spin, true)?;
        }
        Ok(m)
    }
}

impl Catalog {
    /// Builds a catalogue from `(file name, TOML source)` pairs.
    pub fn from_sources(
        boards: &[(String, String)],
        models: &[(String, String)],
    ) -> Result<Catalog, CatalogError> {
        let mut bs = Vec::new();
        for (f, s) in boards {
            bs.push(Board::parse(f, s)?);
        }
        let mut ms = Vec::new();
        for (f, s) in models {
            ms.push(Model::parse(f, s)?);
        }
        bs.sort_by(|a, b| a.board.id.cmp(&b.board.id));
        ms.sort_by_key(|m| {
            let i = PAPER_ORDER
                .iter()
                .position(|p| *p == m.model.id)
                .unwrap_or(PAPER_ORDER.len());
            (i, m.model.id.clone())
        });
        let cat = Catalog {
            boards: bs,
            models: ms,
        };
        cat.check_names()?;
        for m in &cat.models {
            let src = models
                .iter()
                .find(|(f, _)| *f == m.file)
                .map(|(_, s)| s.as_str())
                .unwrap_or("");
            for board in m.twin.keys() {
                if !cat.boards.iter().any(|b| &b.board.id == board) {
                    return Err(CatalogError::Invalid {
                        file: m.file.clone(),
                        line: line_of(src, &format!("twin.{board}")),
                        field: format!("twin.{board}"),
                        message: format!(
                            "no board `{board}` in the catalogue; boards: {}",
                            cat.board_ids().join(", ")
                        ),
                    });
                }
            }
        }
        Ok(cat)
    }

    fn check_names(&self) -> Result<(), CatalogError> {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for b in &self.boards {
            for n in b.names() {
                if let Some(other) = seen.insert(norm(n), b.file.clone()) {
                    return Err(CatalogError::Duplicate {
                        file: b.file.clone(),
                        name: n.to_string(),
                        other,
                    });
                }
            }
        }
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for m in &self.models {
            for n in m.names() {
                if let Some(other) = seen.insert(norm(n), m.file.clone()) {
                    return Err(CatalogError::Duplicate {
                        file: m.file.clone(),
                        name: n.to_string(),
                        other,
                    });
                }
            }
        }
        Ok(())
    }
}
