//! Drawing the figures of `snnc plot` with `plotters` into an RGB buffer, encoded as PNG.

use super::{Curve, Figure, HEIGHT, Raster, Rates, Trace, Track, WIDTH};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::error::Error;

/// DejaVu Sans (see `runtime/assets/DejaVuSans-LICENSE.txt`): text needs a font from bytes.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn Error>>;

/// Colours of groups and lines (matplotlib's `tab10`).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Draws a figure: `WIDTH` x `HEIGHT` RGB pixels, as PNG bytes.
pub(super) fn draw(figure: &Figure) -> Result<Vec<u8>, String> {
    static FONT_LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*FONT_LOADED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok()) {
        return Err("the built-in font could not be loaded".into());
    }
    let mut pixels = vec![0u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let drawn = match figure {
            Figure::Raster(r) => raster(&root, r),
            Figure::Traces(t) => traces(&root, t),
            Figure::Rates(r) => rates(&root, r),
            Figure::Trajectory(t) => trajectory(&root, t),
            Figure::Learning(c) => learning(&root, c),
        };
        drawn.map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&pixels)
}

fn encode_png(pixels: &[u8]) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// A legend in the upper right corner, on a translucent white box.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(font(14))
        .draw()?;
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Every spike as a dot: time against neuron, groups stacked from the bottom in the monitor's order.
fn raster(root: &Area<'_>, r: &Raster) -> DrawResult {
    let total: u64 = r.groups.iter().map(|g| u64::from(g.size)).sum();
    let spikes: usize = r.groups.iter().map(|g| g.steps.len()).sum();
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Spike raster ({spikes} spike{})", plural(spikes)), font(22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.0..r.time.end, 0.0..total.max(1) as f64)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(format!("time ({})", r.time.unit))
        .y_desc("neuron (groups stacked)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(font(14))
        .axis_desc_style(font(16))
        .draw()?;
    // Dots for a few spikes (bigger for small groups), single pixels for many.
    let radius = if total <= 500 { 2 } else { 1 };
    let dense = spikes > 20_000;
    let mut offset = 0u64;
    for (k, g) in r.groups.iter().enumerate() {
        let c = colour(k);
        let base = offset as f64;
        let points = g.steps.iter().zip(&g.indices).map(|(&s, &i)| (r.time.at(s), base + i as f64 + 0.5));
        let series = if dense {
            chart.draw_series(points.map(|p| Pixel::new(p, c)))?
        } else {
            chart.draw_series(points.map(|p| Circle::new(p, radius, c.filled())))?
        };
        series
            .label(format!(
                "{} ({} neuron{}, {} spike{})",
                g.name,
                g.size,
                plural(g.size as usize),
                g.steps.len(),
                plural(g.steps.len())
            ))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        offset += u64::from(g.size);
        if offset < total {
            let y = offset as f64;
            chart.draw_series(std::iter::once(PathElement::new([(0.0, y), (r.time.end, y)], BLACK.mix(0.3))))?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// One panel per sampled variable, a few of its neurons each.
fn traces(root: &Area<'_>, traces: &[Trace]) -> DrawResult {
    let root = root.titled("Sampled state variables", font(22))?;
    let cols = if traces.len() > 3 { 2 } else { 1 };
    let rows = traces.len().div_ceil(cols);
    let panels = root.split_evenly((rows, cols));
    for (panel, t) in panels.iter().zip(traces) {
        let ys = t.lines.iter().flat_map(|(_, v)| v.iter().map(|y| y * t.scale)).filter(|y| y.is_finite());
        let (low, high) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let (low, high) = padded(low, high);
        let shown = t.lines.len();
        let caption = if t.key.starts_with("shared.") {
            t.key.clone()
        } else if t.recorded > shown {
            format!("{} ({shown} of {} neurons)", t.key, t.recorded)
        } else {
            format!("{} ({shown} neuron{})", t.key, plural(shown))
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, font(16))
            .margin(8)
            .margin_right(22)
            .x_label_area_size(38)
            .y_label_area_size(62)
            .build_cartesian_2d(0.0..t.time.end, low..high)?;
        chart
            .configure_mesh()
            .light_line_style(BLACK.mix(0.05))
            .x_desc(format!("time ({})", t.time.unit))
            .y_desc(t.label.clone())
            .x_labels(6)
            .y_labels(5)
            .label_style(font(12))
            .axis_desc_style(font(14))
            .draw()?;
        for (k, (neuron, values)) in t.lines.iter().enumerate() {
            let c = colour(k);
            let points = t.steps.iter().zip(values).map(|(&s, &v)| (t.time.at(s), v * t.scale));
            let series = chart.draw_series(LineSeries::new(points, c.stroke_width(1)))?;
            if shown > 1 {
                series
                    .label(format!("neuron {neuron}"))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(2)));
            }
        }
        if shown > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(font(11))
                .draw()?;
        }
    }
    Ok(())
}

/// A range around `low..high` with a margin, never empty.
fn padded(low: f64, high: f64) -> (f64, f64) {
    if !(low.is_finite() && high.is_finite()) {
        return (0.0, 1.0);
    }
    let span = high - low;
    if span <= f64::EPSILON * high.abs().max(1e-300) {
        let d = if high == 0.0 { 1.0 } else { high.abs() * 0.1 };
        return (low - d, high + d);
    }
    (low - 0.05 * span, high + 0.05 * span)
}

/// Each group's rate over time, in bins.
fn rates(root: &Area<'_>, r: &Rates) -> DrawResult {
    let bin = r.bin_steps as f64 * r.time.dt;
    let bin_text = if bin >= 1.0 { format!("{bin} s") } else { format!("{} ms", (bin * 1e6).round() / 1e3) };
    let top = r.groups.iter().flat_map(|(_, v)| v).copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Population rates (bins of {bin_text})"), font(22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.0..r.time.end, 0.0..top)?;
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.05))
        .x_desc(format!("time ({})", r.time.unit))
        .y_desc("rate (Hz)")
        .label_style(font(14))
        .axis_desc_style(font(16))
        .draw()?;
    let width = r.bin_steps as i64;
    for (k, (name, values)) in r.groups.iter().enumerate() {
        let c = colour(k);
        // A step line: each bin's rate over its width.
        let points = values.iter().enumerate().flat_map(|(b, &v)| {
            let start = b as i64 * width;
            [(r.time.at(start), v), (r.time.at(start + width).min(r.time.end), v)]
        });
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// A sequential colour scale (viridis' ends and middle), `t` in 0..=1.
fn heat(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] =
        [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Left: steps spent in each cell over the whole run; right: the last episode's path.
fn trajectory(root: &Area<'_>, t: &Track) -> DrawResult {
    let steps: u64 = t.visits.iter().sum();
    let root = root.titled(&format!("Agent on a {} x {} grid ({steps} steps)", t.grid.0, t.grid.1), font(22))?;
    let (left, right) = root.split_horizontally(WIDTH / 2);
    let (map, bar) = left.split_horizontally(WIDTH / 2 - 90);
    let x_range = -0.5..t.grid.0 as f64 - 0.5;
    let y_range = -0.5..t.grid.1 as f64 - 0.5;
    let most = t.visits.iter().copied().max().unwrap_or(0).max(1);

    let mut chart = ChartBuilder::on(&map)
        .caption("Visits per cell (all episodes)", font(16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(45)
        .build_cartesian_2d(x_range.clone(), y_range.clone())?;
    grid_mesh(&mut chart, t.grid)?;
    chart.draw_series(t.visits.iter().enumerate().map(|(k, &n)| {
        let (x, y) = ((k % t.grid.0) as f64, (k / t.grid.0) as f64);
        let fill = if n == 0 { RGBColor(235, 235, 235) } else { heat(n as f64 / most as f64) };
        Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], fill.filled())
    }))?;

    let mut scale = ChartBuilder::on(&bar)
        .caption("steps", font(13))
        .margin_top(14)
        .margin_bottom(50)
        .margin_left(10)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, 0.0..most as f64)?;
    let levels = 100;
    scale.draw_series((0..levels).map(|k| {
        let (a, b) = (k as f64 / levels as f64, (k + 1) as f64 / levels as f64);
        Rectangle::new([(0.0, a * most as f64), (1.0, b * most as f64)], heat((a + b) / 2.0).filled())
    }))?;
    // The labels after the colours, so that the colours never cover them.
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(font(12))
        .axis_desc_style(font(13))
        .draw()?;

    let mut chart = ChartBuilder::on(&right)
        .caption(format!("Path in episode {} ({} steps)", t.episode, t.path.len()), font(16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(45)
        .build_cartesian_2d(x_range, y_range)?;
    grid_mesh(&mut chart, t.grid)?;
    // Older moves lighter: the path's colour goes from light to dark blue.
    let n = t.path.len().max(2) as f64;
    chart.draw_series(t.path.windows(2).enumerate().filter(|(_, w)| w[0] != w[1]).map(|(k, w)| {
        let f = k as f64 / (n - 1.0);
        let c = RGBColor((200.0 - 170.0 * f) as u8, (220.0 - 150.0 * f) as u8, (255.0 - 75.0 * f) as u8);
        PathElement::new([w[0], w[1]], c.stroke_width(2))
    }))?;
    if let (Some(&start), Some(&end)) = (t.path.first(), t.path.last()) {
        let green = RGBColor(44, 160, 44);
        chart
            .draw_series(std::iter::once(Circle::new(start, 7, green.filled())))?
            .label("start")
            .legend(move |(x, y)| Circle::new((x + 5, y), 5, green.filled()));
        let red = RGBColor(214, 39, 40);
        chart
            .draw_series(std::iter::once(TriangleMarker::new(end, 9, red.filled())))?
            .label("end")
            .legend(move |(x, y)| TriangleMarker::new((x + 5, y), 6, red.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    Ok(())
}

/// Axes of a grid chart: whole cells, labelled `grid x` and `grid y`, no mesh.
fn grid_mesh<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    grid: (usize, usize),
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let whole = |v: &f64| if (v - v.round()).abs() < 1e-6 { format!("{}", v.round()) } else { String::new() };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("grid x (cell)")
        .y_desc("grid y (cell)")
        .x_labels(grid.0.min(9) + 1)
        .y_labels(grid.1.min(9) + 1)
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .label_style(font(12))
        .axis_desc_style(font(14))
        .draw()?;
    Ok(())
}

/// Per episode, the metric (with its spread across replicas), and the baseline's level.
fn learning(root: &Area<'_>, c: &Curve) -> DrawResult {
    let episodes = c.points.len() as i32;
    let mut top = c.points.iter().map(|p| p.max).fold(0.0, f64::max);
    if let Some(b) = &c.baseline {
        top = top.max(b.max);
    }
    let bottom = c.points.iter().map(|p| p.min).chain(c.baseline.as_ref().map(|b| b.min)).fold(0.0, f64::min);
    let (bottom, top) = if top > bottom { (bottom, top + 0.35 * (top - bottom)) } else { (bottom, bottom + 1.0) };
    let who = if c.replicas > 1 { format!(", mean of {} replicas", c.replicas) } else { String::new() };
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Learning curve ({} policy{who})", c.policy), font(22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0..episodes + 1, bottom..top)?;
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.05))
        .x_desc("episode")
        .y_desc(c.metric.clone())
        .x_labels((episodes as usize + 2).min(12))
        .x_label_formatter(&|x| if *x >= 1 && *x <= episodes { x.to_string() } else { String::new() })
        .label_style(font(14))
        .axis_desc_style(font(16))
        .draw()?;
    if let Some(b) = &c.baseline {
        let red = RGBColor(214, 39, 40);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0, b.min), (episodes + 1, b.max)],
            red.mix(0.08).filled(),
        )))?;
        chart
            .draw_series(DashedLineSeries::new([(0, b.mean), (episodes + 1, b.mean)], 10, 6, red.stroke_width(2)))?
            .label(b.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], red.stroke_width(2)));
    }
    let blue = colour(0);
    if c.replicas > 1 {
        let band = |low: &dyn Fn(&super::Point) -> f64, high: &dyn Fn(&super::Point) -> f64| {
            let lower = c.points.iter().enumerate().map(|(e, p)| (e as i32 + 1, low(p)));
            let upper = c.points.iter().enumerate().rev().map(|(e, p)| (e as i32 + 1, high(p)));
            lower.chain(upper).collect::<Vec<_>>()
        };
        chart
            .draw_series(std::iter::once(Polygon::new(band(&|p| p.min, &|p| p.max), blue.mix(0.12).filled())))?
            .label("min-max across replicas")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], blue.mix(0.12).filled()));
        chart
            .draw_series(std::iter::once(Polygon::new(
                band(&|p| p.mean - p.sd, &|p| p.mean + p.sd),
                blue.mix(0.3).filled(),
            )))?
            .label("mean ± sd")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], blue.mix(0.3).filled()));
        // Whiskers, so that a single episode shows its spread too.
        chart.draw_series(c.points.iter().enumerate().map(|(e, p)| {
            PathElement::new([(e as i32 + 1, p.min), (e as i32 + 1, p.max)], blue.mix(0.6).stroke_width(1))
        }))?;
    }
    let mean: Vec<(i32, f64)> = c.points.iter().enumerate().map(|(e, p)| (e as i32 + 1, p.mean)).collect();
    chart
        .draw_series(LineSeries::new(mean.iter().copied(), blue.stroke_width(2)))?
        .label(if c.replicas > 1 { "mean per episode" } else { "per episode" })
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], blue.stroke_width(2)));
    chart.draw_series(mean.iter().map(|&p| Circle::new(p, 4, blue.filled())))?;
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}
