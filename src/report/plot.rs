//! SVG plots (plotters, SVG backend only: no system fonts are needed, text is laid out with
//! built-in metrics and rendered by the viewer):
//!
//! 1. `energy-vs-gpu.svg`: energy against GPU frequency, one line per batch size at the
//!    recommended CPU frequency (the surrogate's prediction, else the full grid), measured points
//!    marked;
//! 2. `heatmap.svg`: CPU x GPU energy at the recommended batch size (the full grid when known,
//!    else the measured cells only);
//! 3. `convergence.svg`: energy of the recommendation after each measurement, with the DVFS
//!    baseline and, when known, the grid minimum;
//! 4. `batch.svg`: energy and time per inference against batch size at the recommended clocks.

use crate::space::Config;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;

/// One configuration with its energy and time for the run's inferences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The configuration.
    pub config: Config,
    /// Energy for `inferences` inferences.
    pub energy_j: f64,
    /// Time for `inferences` inferences.
    pub time_s: f64,
}

/// What the plots are drawn from.
pub struct PlotInput<'a> {
    /// "model on board (source)".
    pub title: String,
    /// Inferences the energies are for.
    pub inferences: u32,
    /// Measured configurations, in order.
    pub measured: &'a [Sample],
    /// The recommendation.
    pub best: Option<Config>,
    /// Energy of the recommendation after each measurement (convergence).
    pub trace_j: &'a [f64],
    /// DVFS baseline energy and its label.
    pub baseline: Option<(f64, String)>,
    /// The whole grid, when known, and where it comes from ("twin, noiseless", "sweep").
    pub grid: Option<(&'a [Sample], &'a str)>,
    /// The surrogate's predicted energy over the grid, when the strategy has one.
    pub surrogate: Option<&'a [Sample]>,
}

/// Reads one quantity of a sample.
type Metric = fn(&Sample) -> f64;

/// File names of the plots, in the order above.
pub const FILES: [&str; 4] = [
    "energy-vs-gpu.svg",
    "heatmap.svg",
    "convergence.svg",
    "batch.svg",
];

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn mhz(hz: u64) -> f64 {
    hz as f64 / 1e6
}

fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.02).max(1e-9);
    (lo - pad, hi + pad)
}

/// An f64 axis ticked where the caller says: plotters picks round numbers of the axis's own
/// units, and for a log10 axis or a heat map's cell indices those are not the values to label.
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Ticked {
        Ticked {
            inner: (lo..hi).into(),
            ticks,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }
    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for Ticked {
    // Every axis of this type is given a label formatter; this is the fallback.
    fn format(value: &f64) -> String {
        tick_label(*value)
    }
}

/// A y range raised at the top so that a legend of `entries` rows, drawn in the upper right of
/// a plot area `height_px` high, sits above every line instead of over one.
fn with_legend_room((y0, y1): (f64, f64), entries: usize, height_px: f64) -> (f64, f64) {
    let share = ((entries as f64 * 20.0 + 14.0) / height_px).min(0.5);
    (y0, y1 + (y1 - y0) * share / (1.0 - share))
}

/// Ticks of a log10 axis from `lo` to `hi` (in log10 units) at 1, 2 and 5 times powers of ten
/// (every integer multiple when the range is too short for three of those).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let at = |mults: &[f64]| -> Vec<f64> {
        (lo.floor() as i32..=hi.ceil() as i32)
            .flat_map(|k| mults.iter().map(move |m| (m * 10f64.powi(k)).log10()))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let coarse = at(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 3 {
        coarse
    } else {
        at(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

/// A tick value as people write it: three significant digits at most, no trailing zeros.
fn tick_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    }
}

/// Draws an SVG in memory, then writes it (when there was something to draw) by the rule for
/// every file edgetune writes ([`crate::files`]): never through a link placed at `path`.
fn to_file(
    path: &Path,
    draw: impl FnOnce(&mut String) -> Result<bool, String>,
) -> Result<bool, String> {
    let mut svg = String::new();
    if !draw(&mut svg)? {
        return Ok(false);
    }
    crate::files::write_replacing(path, svg.as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(true)
}

/// Draws every plot that has data into `dir`; returns the files written.
pub fn draw_all(p: &PlotInput<'_>, dir: &Path, which: &[usize]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for i in which {
        let path = dir.join(FILES[*i]);
        let drawn = match i {
            0 => to_file(&path, |svg| energy_vs_gpu(p, svg))?,
            1 => to_file(&path, |svg| heatmap(p, svg))?,
            2 => to_file(&path, |svg| convergence(p, svg))?,
            _ => to_file(&path, |svg| batch(p, svg))?,
        };
        if drawn {
            out.push(FILES[*i].to_string());
        }
    }
    Ok(out)
}

fn at_cpu(v: &[Sample], cpu: u64, batch: u32) -> Vec<&Sample> {
    let mut s: Vec<&Sample> = v
        .iter()
        .filter(|x| x.config.cpu_freq_khz == cpu && x.config.batch_size == batch)
        .collect();
    s.sort_by_key(|x| x.config.gpu_freq_hz);
    s
}

fn energy_vs_gpu(p: &PlotInput<'_>, svg: &mut String) -> Result<bool, String> {
    let Some(best) = p.best else { return Ok(false) };
    let lines: Option<(&[Sample], &str)> = p.surrogate.map(|s| (s, "surrogate")).or(p.grid);
    let all: Vec<&Sample> = lines
        .map(|(l, _)| l.iter().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(p.measured.iter())
        .filter(|x| x.config.cpu_freq_khz == best.cpu_freq_khz)
        .collect();
    // Without GPU clocks (a power-mode table, a GPU at its default clocks) there is no curve.
    if all.is_empty() || all.iter().all(|x| x.config.gpu_freq_hz == 0) {
        return Ok(false);
    }
    let batches: BTreeSet<u32> = all.iter().map(|x| x.config.batch_size).collect();
    let (x0, x1) = bounds(all.iter().map(|x| mhz(x.config.gpu_freq_hz)));
    let entries = batches.len() * usize::from(lines.is_some()) + 1;
    let (y0, y1) = with_legend_room(bounds(all.iter().map(|x| x.energy_j)), entries, 400.0);
    let root = SVGBackend::with_string(svg, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: energy vs GPU frequency at CPU {:.1} MHz",
                p.title,
                best.cpu_freq_khz as f64 / 1e3
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("GPU frequency (MHz)")
        .y_desc(format!("Energy per {} inferences (J)", p.inferences))
        .draw()
        .map_err(err)?;
    for (k, b) in batches.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        if let Some((l, label)) = lines {
            let pts: Vec<(f64, f64)> = at_cpu(l, best.cpu_freq_khz, *b)
                .iter()
                .map(|x| (mhz(x.config.gpu_freq_hz), x.energy_j))
                .collect();
            c.draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(err)?
                .label(format!("batch {b} ({label})"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
        let measured = at_cpu(p.measured, best.cpu_freq_khz, *b);
        c.draw_series(
            measured
                .iter()
                .map(|x| Circle::new((mhz(x.config.gpu_freq_hz), x.energy_j), 5, color.filled())),
        )
        .map_err(err)?;
    }
    c.draw_series(std::iter::once(Cross::new(
        (
            mhz(best.gpu_freq_hz),
            all.iter()
                .find(|x| x.config == best)
                .map_or(y0, |x| x.energy_j),
        ),
        9,
        BLACK.stroke_width(2),
    )))
    .map_err(err)?
    .label("recommended (x); measured (dots)")
    .legend(|(x, y)| Cross::new((x + 9, y), 5, BLACK.stroke_width(2)));
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

/// Blue (low energy) to yellow (high) through green.
fn ramp(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let stops = [
        (68.0, 1.0, 84.0),
        (33.0, 145.0, 140.0),
        (253.0, 231.0, 37.0),
    ];
    let (a, b, u) = if t < 0.5 {
        (stops[0], stops[1], t * 2.0)
    } else {
        (stops[1], stops[2], t * 2.0 - 1.0)
    };
    let mix = |x: f64, y: f64| (x + (y - x) * u).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Tick positions at the centres of `n` unit cells, at most `most` of them (every k-th cell).
fn cell_centres(n: usize, most: usize) -> Vec<f64> {
    let step = n.div_ceil(most.max(1)).max(1);
    (0..n).step_by(step).map(|i| i as f64 + 0.5).collect()
}

/// The distinct values of one knob over `cells`, in order.
fn distinct(cells: &[&Sample], knob: impl Fn(&crate::space::Config) -> u64) -> Vec<u64> {
    let set: BTreeSet<u64> = cells.iter().map(|x| knob(&x.config)).collect();
    set.into_iter().collect()
}

fn heatmap(p: &PlotInput<'_>, svg: &mut String) -> Result<bool, String> {
    let Some(best) = p.best else { return Ok(false) };
    let (cells, source): (Vec<&Sample>, &str) = match p.grid {
        Some((g, l)) => (g.iter().collect(), l),
        None => (
            p.measured.iter().collect(),
            "measured clocks only; white: not measured",
        ),
    };
    let cells: Vec<&Sample> = cells
        .into_iter()
        .filter(|x| x.config.batch_size == best.batch_size)
        .collect();
    if cells.is_empty() {
        return Ok(false);
    }
    let cpus = distinct(&cells, |c| c.cpu_freq_khz);
    let gpus = distinct(&cells, |c| c.gpu_freq_hz);
    // One cell (no clock knobs, as in a power-mode table): no map to draw.
    if cpus.len() < 2 && gpus.len() < 2 {
        return Ok(false);
    }
    let (e0, e1) = cells
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x.energy_j), b.max(x.energy_j))
        });
    // Colour on a log scale: the basin around the minimum is where the differences matter.
    let shade = |e: f64| {
        if e1 > e0 {
            (e.ln() - e0.ln()) / (e1.ln() - e0.ln())
        } else {
            0.0
        }
    };
    let root = SVGBackend::with_string(svg, (800, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (main, bar) = root.split_horizontally(690);
    let mut c = ChartBuilder::on(&main)
        .caption(
            format!(
                "{}: energy at batch {} ({source})",
                p.title, best.batch_size
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            Ticked::new(0.0, gpus.len() as f64, cell_centres(gpus.len(), 12)),
            Ticked::new(0.0, cpus.len() as f64, cell_centres(cpus.len(), 15)),
        )
        .map_err(err)?;
    let gl = gpus.clone();
    let cl = cpus.clone();
    c.configure_mesh()
        .disable_mesh()
        .x_desc("GPU frequency (MHz)")
        .y_desc("CPU frequency (MHz)")
        .x_label_formatter(&move |v| {
            gl.get(v.floor() as usize)
                .map_or(String::new(), |h| format!("{:.0}", mhz(*h)))
        })
        .y_label_formatter(&move |v| {
            cl.get(v.floor() as usize)
                .map_or(String::new(), |k| format!("{:.0}", *k as f64 / 1e3))
        })
        .draw()
        .map_err(err)?;
    let idx = |v: &[u64], x: u64| v.iter().position(|y| *y == x).unwrap_or(0) as f64;
    c.draw_series(cells.iter().map(|x| {
        let (gx, cy) = (
            idx(&gpus, x.config.gpu_freq_hz),
            idx(&cpus, x.config.cpu_freq_khz),
        );
        Rectangle::new(
            [(gx, cy), (gx + 1.0, cy + 1.0)],
            ramp(shade(x.energy_j)).filled(),
        )
    }))
    .map_err(err)?;
    c.draw_series(std::iter::once(Cross::new(
        (
            idx(&gpus, best.gpu_freq_hz) + 0.5,
            idx(&cpus, best.cpu_freq_khz) + 0.5,
        ),
        8,
        RED.stroke_width(3),
    )))
    .map_err(err)?;
    colour_bar(&bar, e0, e1, &shade, p.inferences)?;
    root.present().map_err(err)?;
    Ok(true)
}

/// The heat map's colour scale, from `e0` to `e1` joules, shaded as the cells are.
fn colour_bar(
    bar: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    e0: f64,
    e1: f64,
    shade: &dyn Fn(f64) -> f64,
    inferences: u32,
) -> Result<(), String> {
    // Whole joules where the range allows, else enough decimals to tell the ticks apart.
    let decimals = (1.0 - (e1 - e0).max(1e-9).log10().floor()).clamp(0.0, 6.0) as usize;
    let mut s = ChartBuilder::on(bar)
        .caption(
            format!("J / {}", crate::units::inferences(inferences)),
            ("sans-serif", 12),
        )
        .margin_top(30)
        .margin_bottom(57)
        .margin_right(8)
        .y_label_area_size(62)
        .build_cartesian_2d(0f64..1f64, e0..e1.max(e0 + 1e-9))
        .map_err(err)?;
    s.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_style(("sans-serif", 12))
        .y_label_formatter(&|v| format!("{v:.decimals$}"))
        .draw()
        .map_err(err)?;
    let steps = 50;
    s.draw_series((0..steps).map(|i| {
        let a = e0 + (e1 - e0) * i as f64 / steps as f64;
        let b = e0 + (e1 - e0) * (i + 1) as f64 / steps as f64;
        Rectangle::new([(0.0, a), (1.0, b)], ramp(shade(a)).filled())
    }))
    .map_err(err)?;
    Ok(())
}

fn convergence(p: &PlotInput<'_>, svg: &mut String) -> Result<bool, String> {
    if p.trace_j.is_empty() {
        return Ok(false);
    }
    let n = p.trace_j.len();
    let grid_min = p
        .grid
        .map(|(g, _)| g.iter().map(|x| x.energy_j).fold(f64::INFINITY, f64::min));
    let entries = 1 + usize::from(p.baseline.is_some()) + usize::from(grid_min.is_some());
    let (y0, y1) = with_legend_room(
        bounds(
            p.trace_j
                .iter()
                .copied()
                .chain(p.baseline.as_ref().map(|b| b.0))
                .chain(grid_min),
        ),
        entries,
        400.0,
    );
    let root = SVGBackend::with_string(svg, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut c = ChartBuilder::on(&root)
        .caption(format!("{}: convergence", p.title), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5f64..n as f64 + 0.5, y0..y1)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("Measurements made")
        // Whole measurements only: no tick reads 1.5.
        .x_labels(n.min(12) + 1)
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-6 && *v >= 1.0 {
                format!("{:.0}", v)
            } else {
                String::new()
            }
        })
        .y_desc(format!(
            "Recommended energy per {} inferences (J)",
            p.inferences
        ))
        .draw()
        .map_err(err)?;
    let pts: Vec<(f64, f64)> = p
        .trace_j
        .iter()
        .enumerate()
        .map(|(i, e)| ((i + 1) as f64, *e))
        .collect();
    c.draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))
        .map_err(err)?
        .label("recommendation")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE));
    c.draw_series(pts.iter().map(|q| Circle::new(*q, 3, BLUE.filled())))
        .map_err(err)?;
    let hline = |y: f64| vec![(0.5, y), (n as f64 + 0.5, y)];
    if let Some((b, label)) = &p.baseline {
        c.draw_series(LineSeries::new(hline(*b), RED.stroke_width(2)))
            .map_err(err)?
            .label(label.clone())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
    }
    if let Some(m) = grid_min {
        let g = GREEN.mix(0.9);
        c.draw_series(LineSeries::new(hline(m), g.stroke_width(2)))
            .map_err(err)?
            .label("grid minimum")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], g));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

/// The x range of batch sizes on a log2 axis, with a margin.
fn log2_range(sizes: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = sizes.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x.log2()), b.max(x.log2()))
    });
    (lo - 0.3, hi.max(lo + 1.0) + 0.3)
}

fn batch(p: &PlotInput<'_>, svg: &mut String) -> Result<bool, String> {
    // Batch 0: the batch size is not a knob (a table without that column).
    let Some(best) = p.best.filter(|b| b.batch_size != 0) else {
        return Ok(false);
    };
    let same_clocks = |x: &&Sample| {
        x.config.cpu_freq_khz == best.cpu_freq_khz && x.config.gpu_freq_hz == best.gpu_freq_hz
    };
    let line: Vec<&Sample> = p
        .grid
        .map(|(g, _)| g.iter().filter(same_clocks).collect())
        .unwrap_or_default();
    let measured: Vec<&Sample> = p.measured.iter().filter(same_clocks).collect();
    let sizes: BTreeSet<u32> = line
        .iter()
        .chain(&measured)
        .map(|x| x.config.batch_size)
        .collect();
    // One batch size (`sweep --batch 8`): no curve to draw.
    if sizes.len() < 2 {
        return Ok(false);
    }
    let source = p.grid.map_or("", |(_, l)| l);
    let at = crate::space::Config {
        batch_size: 0,
        ..best
    };
    let n = p.inferences as f64;
    let root = SVGBackend::with_string(svg, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let halves = root.split_evenly((1, 2));
    let metrics: [(&str, Metric); 2] = [
        ("Energy per inference (mJ)", |x| x.energy_j),
        ("Time per inference (ms)", |x| x.time_s),
    ];
    for (area, (label, get)) in halves.iter().zip(metrics) {
        let val = |x: &Sample| get(x) / n * 1e3;
        let (x0, x1) = log2_range(sizes.iter().map(|b| *b as f64));
        let (y0, y1) = bounds(line.iter().chain(&measured).map(|x| val(x)));
        let mut c = ChartBuilder::on(area)
            .caption(
                format!("{} at {at}", label.split(" (").next().unwrap_or(label),),
                ("sans-serif", 15),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("Batch size")
            .y_desc(label)
            .x_labels(((x1 - x0).ceil() as usize + 1).max(2))
            // Ticks only at powers of two (the batch sizes the models use, 12 aside).
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-6 {
                    format!("{:.0}", 2f64.powf(v.round()))
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(err)?;
        let mut pts: Vec<(f64, f64)> = line
            .iter()
            .map(|x| ((x.config.batch_size as f64).log2(), val(x)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !pts.is_empty() {
            c.draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
                .map_err(err)?
                .label(source.to_string())
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE));
        }
        if !measured.is_empty() {
            c.draw_series(measured.iter().map(|x| {
                Circle::new(
                    ((x.config.batch_size as f64).log2(), val(x)),
                    5,
                    RED.filled(),
                )
            }))
            .map_err(err)?
            .label("measured")
            .legend(|(x, y)| Circle::new((x + 9, y), 4, RED.filled()));
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(true)
}

/// `pareto.svg`: energy per inference against batch latency for every measured configuration,
/// the Pareto front drawn through its points, the DVFS baseline marked (log-log axes).
pub fn pareto(rep: &super::Report, path: &Path) -> Result<bool, String> {
    to_file(path, |svg| pareto_svg(rep, svg))
}

fn pareto_svg(rep: &super::Report, svg: &mut String) -> Result<bool, String> {
    if rep.pareto.is_empty() {
        return Ok(false);
    }
    let b = &rep.baseline;
    let q = crate::objective::Quantities {
        energy_j: b.energy_j,
        time_s: b.time_s,
        inferences: rep.inferences,
        batch_size: b.batch_size,
        idle_power_w: b.idle_power_w,
    };
    let base = (q.latency_ms(), q.energy_per_inference_mj());
    let all: Vec<(f64, f64)> = rep
        .measurements
        .iter()
        .map(|m| (m.latency_ms, m.energy.energy_per_inference_mj))
        .collect();
    let front: Vec<(f64, f64)> = rep
        .pareto
        .iter()
        .map(|p| (p.latency_ms, p.energy_per_inference_mj))
        .collect();
    let log = |v: (f64, f64)| (v.0.max(1e-9).log10(), v.1.max(1e-9).log10());
    let (x0, x1) = bounds(all.iter().chain([&base]).map(|p| log(*p).0));
    let (y0, y1) = bounds(all.iter().chain([&base]).map(|p| log(*p).1));
    let root = SVGBackend::with_string(svg, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            format!("{} on {}: energy-latency front", rep.model, rep.device),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            Ticked::new(x0, x1, log_ticks(x0, x1)),
            Ticked::new(y0, y1, log_ticks(y0, y1)),
        )
        .map_err(err)?;
    c.configure_mesh()
        .x_desc("Latency of one batch (ms, log scale)")
        .y_desc("Energy per inference (mJ, log scale)")
        .x_label_formatter(&|v| tick_label(10f64.powf(*v)))
        .y_label_formatter(&|v| tick_label(10f64.powf(*v)))
        .draw()
        .map_err(err)?;
    c.draw_series(
        all.iter()
            .map(|p| Circle::new(log(*p), 3, RGBColor(160, 160, 160).filled())),
    )
    .map_err(err)?
    .label("measured")
    .legend(|(x, y)| Circle::new((x + 8, y), 3, RGBColor(160, 160, 160).filled()));
    c.draw_series(LineSeries::new(
        front.iter().map(|p| log(*p)),
        BLUE.stroke_width(2),
    ))
    .map_err(err)?
    .label("Pareto front")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE.stroke_width(2)));
    c.draw_series(front.iter().map(|p| Circle::new(log(*p), 5, BLUE.filled())))
        .map_err(err)?;
    c.draw_series([TriangleMarker::new(log(base), 8, RED.filled())])
        .map_err(err)?
        .label(format!(
            "{}{}",
            b.kind.short(),
            super::at_batch(b.batch_size)
        ))
        .legend(|(x, y)| TriangleMarker::new((x + 8, y), 6, RED.filled()));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_sit_on_values_people_write() {
        // 150..2000 ms: 200, 500, 1000, 2000.
        let labels = |lo: f64, hi: f64| -> Vec<String> {
            log_ticks(lo.log10(), hi.log10())
                .iter()
                .map(|v| tick_label(10f64.powf(*v)))
                .collect()
        };
        assert_eq!(labels(150.0, 2000.0), ["200", "500", "1000", "2000"]);
        // A short range gets every integer multiple.
        assert_eq!(labels(380.0, 720.0), ["400", "500", "600", "700"]);
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(398.107), "398");
        assert_eq!(tick_label(0.0), "0");
    }

    #[test]
    fn heat_map_ticks_are_at_cell_centres_and_legends_get_room() {
        assert_eq!(cell_centres(3, 12), [0.5, 1.5, 2.5]);
        assert_eq!(
            cell_centres(30, 12),
            [0.5, 3.5, 6.5, 9.5, 12.5, 15.5, 18.5, 21.5, 24.5, 27.5]
        );
        let (lo, hi) = with_legend_room((0.0, 100.0), 3, 400.0);
        // The legend's 74 px of 400 are above the data.
        assert_eq!(lo, 0.0);
        assert!((100.0 / hi - (1.0 - 74.0 / 400.0)).abs() < 1e-9, "{hi}");
    }
}
