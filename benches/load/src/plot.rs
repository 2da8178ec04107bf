//! PNG plots (plotters, bitmap backend): latency by percentile for one or more runs, and
//! resident memory over a run.

use std::error::Error;
use std::fs;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// Loads the TrueType font every label is drawn with.
pub fn load_font(path: &Path) -> Result<()> {
    let bytes: &'static [u8] = Box::leak(fs::read(path)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| "not a usable TrueType font")?;
    Ok(())
}

/// One series read from a `percentile,latency_us` file.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// (percentile, latency in microseconds).
    pub points: Vec<(f64, f64)>,
}

/// Reads the CSV rows of two or more numeric columns, skipping the header; `columns` picks
/// which two become (x, y).
pub fn read_csv(text: &str, columns: (usize, usize)) -> Vec<(f64, f64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let x = fields.get(columns.0)?.trim().parse().ok()?;
            let y = fields.get(columns.1)?.trim().parse().ok()?;
            Some((x, y))
        })
        .collect()
}

/// The "nines" scale: 0 at 0 %, 1 at 90 %, 2 at 99 %, 3 at 99.9 %.
pub fn nines(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).max(1e-6);
    -rest.log10()
}

/// The percentile label of a point on the nines scale.
fn nines_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    match x.round() as i64 {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        3 => "99.9%".into(),
        4 => "99.99%".into(),
        5 => "99.999%".into(),
        _ => format!("{p:.3}%"),
    }
}

/// Latency by percentile (log scale) for `series`.
pub fn latency(out: &Path, title: &str, series: &[Series]) -> Result<()> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for &(_, y) in all {
        if y > 0.0 {
            lo = lo.min(y);
            hi = hi.max(y);
        }
    }
    if hi <= 0.0 {
        return Err("no latency to plot".into());
    }
    let root = BitMapBackend::new(out, (1000, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..5f64, (lo * 0.8..hi * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&|x| nines_label(*x))
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS.get(i % COLOURS.len()).copied().unwrap_or(BLACK);
        chart
            .draw_series(LineSeries::new(
                s.points
                    .iter()
                    .filter(|(_, y)| *y > 0.0)
                    .map(|&(p, y)| (nines(p), y)),
                colour.stroke_width(2),
            ))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Resident memory (MiB) against requests completed, from `completed,rss_kib` points.
pub fn rss(out: &Path, title: &str, points: &[(f64, f64)]) -> Result<()> {
    let max_x = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let max_y = points.iter().map(|p| p.1 / 1024.0).fold(1.0, f64::max);
    let root = BitMapBackend::new(out, (1000, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_x, 0f64..max_y * 1.2)?;
    chart
        .configure_mesh()
        .x_desc("requests completed")
        .y_desc("RSS (MiB)")
        .x_label_formatter(&|x| format!("{:.0}k", x / 1000.0))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().map(|&(x, kib)| (x, kib / 1024.0)),
        COLOURS[0].stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_scale() {
        assert!(nines(0.0).abs() < 1e-9);
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(nines_label(2.0), "99%");
    }

    #[test]
    fn csv_columns() {
        let text = "percentile,latency_us\n50.0,12.5\nbad,row\n99.0,40\n";
        assert_eq!(read_csv(text, (0, 1)), vec![(50.0, 12.5), (99.0, 40.0)]);
        let rss = "at_ms,completed,rss_kib\n100,5,9000\n";
        assert_eq!(read_csv(rss, (1, 2)), vec![(5.0, 9000.0)]);
    }

    #[test]
    fn draws_a_png() {
        let font = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
        if !font.exists() {
            // The plot needs a font to draw labels; without one there is nothing to check.
            return;
        }
        load_font(font).unwrap();
        let dir = std::env::temp_dir().join(format!("portcullis-load-plot-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join("latency.png");
        let series = Series {
            label: "test".into(),
            points: vec![(0.0, 10.0), (50.0, 20.0), (99.0, 80.0), (99.9, 200.0)],
        };
        latency(&out, "test", &[series]).unwrap();
        let png = fs::read(&out).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let out = dir.join("rss.png");
        rss(&out, "rss", &[(0.0, 8000.0), (1000.0, 8100.0)]).unwrap();
        assert_eq!(&fs::read(&out).unwrap()[..4], b"\x89PNG");
        fs::remove_dir_all(&dir).unwrap();
    }
}
