//! Where the console's maps put a point. Without a tile server (the
//! default: county intranets often have none) a map is a plain background
//! in an equirectangular frame fitted to its points. With one
//! (`serve --tile-url`, e.g. 天地图) the frame is Web Mercator at the
//! largest zoom that fits the points, and the map lists the tiles to lay
//! under them.

/// A configured tile server: a URL template with `{z}`, `{x}` and `{y}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileSource {
    template: String,
    /// `scheme://host[:port]`, for the Content-Security-Policy.
    origin: String,
}

impl TileSource {
    /// Checks a template: http or https, a host, `{z}`, `{x}` and `{y}`,
    /// and nothing that could break out of a header or an attribute.
    pub fn parse(template: &str) -> Result<TileSource, String> {
        let bad = |why: &str| Err(format!("tile URL {template:?}: {why}"));
        let Some((scheme, rest)) = template.split_once("://") else {
            return bad("must start with http:// or https://");
        };
        if scheme != "http" && scheme != "https" {
            return bad("must start with http:// or https://");
        }
        if template
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"'<>;,\\".contains(c))
        {
            return bad("has a space, a quote, <, >, ; , or \\");
        }
        for part in ["{z}", "{x}", "{y}"] {
            if !template.contains(part) {
                return bad("needs {z}, {x} and {y}");
            }
        }
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || host.contains('{') {
            return bad("needs a fixed host");
        }
        Ok(TileSource {
            template: template.to_owned(),
            origin: format!("{scheme}://{host}"),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn url(&self, z: u32, x: u32, y: u32) -> String {
        self.template
            .replace("{z}", &z.to_string())
            .replace("{x}", &x.to_string())
            .replace("{y}", &y.to_string())
    }
}

/// One tile laid under a map, in the map's pixels.
pub struct Tile {
    pub x: f64,
    pub y: f64,
    pub href: String,
}

/// A map's frame: [`Frame::at`] places a point.
pub struct Frame {
    mercator: bool,
    k: f64,
    scale: f64,
    /// Mercator: the map's top-left in world pixels. Plain: the centre's
    /// longitude and latitude.
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    pub tiles: Vec<Tile>,
}

const TILE_PX: f64 = 256.0;
const ZOOM_MAX: u32 = 18;

/// Web Mercator pixels at zoom 0.
fn mercator(lat: f64, lon: f64) -> (f64, f64) {
    let lat = lat.clamp(-85.05, 85.05).to_radians();
    let x = (lon + 180.0) / 360.0 * TILE_PX;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * TILE_PX;
    (x, y)
}

impl Frame {
    /// Fits `points` (lat, lon) into `w`×`h` pixels with a `margin`.
    pub fn fit(
        points: &[(f64, f64)],
        w: f64,
        h: f64,
        margin: f64,
        tiles: Option<&TileSource>,
    ) -> Frame {
        let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(lat, lon) in points {
            lat0 = lat0.min(lat);
            lat1 = lat1.max(lat);
            lon0 = lon0.min(lon);
            lon1 = lon1.max(lon);
        }
        if points.is_empty() {
            (lat0, lat1, lon0, lon1) = (0.0, 0.0, 0.0, 0.0);
        }
        let Some(src) = tiles else {
            let k = ((lat0 + lat1) / 2.0).to_radians().cos();
            let scale = ((w - 2.0 * margin) / ((lon1 - lon0) * k).max(1e-4))
                .min((h - 2.0 * margin) / (lat1 - lat0).max(1e-4));
            // The points' centre at the map's centre.
            return Frame {
                mercator: false,
                k,
                scale,
                x0: (lon0 + lon1) / 2.0,
                y0: (lat0 + lat1) / 2.0,
                w,
                h,
                tiles: Vec::new(),
            };
        };
        let (ax, ay) = mercator(lat1, lon0);
        let (bx, by) = mercator(lat0, lon1);
        let (dx, dy) = ((bx - ax).max(1e-9), (by - ay).max(1e-9));
        let mut z = ZOOM_MAX;
        while z > 0 {
            let s = f64::from(1u32 << z);
            if dx * s <= w - 2.0 * margin && dy * s <= h - 2.0 * margin {
                break;
            }
            z -= 1;
        }
        let scale = f64::from(1u32 << z);
        // The points' centre at the map's centre.
        let x0 = (ax + bx) / 2.0 * scale - w / 2.0;
        let y0 = (ay + by) / 2.0 * scale - h / 2.0;
        let n = 1u32 << z;
        let first = |v: f64| (v / TILE_PX).floor().max(0.0) as u32;
        let last = |v: f64| ((v / TILE_PX).floor().max(0.0) as u32).min(n - 1);
        let mut list = Vec::new();
        for ty in first(y0)..=last(y0 + h) {
            for tx in first(x0)..=last(x0 + w) {
                list.push(Tile {
                    x: (f64::from(tx) * TILE_PX - x0).round(),
                    y: (f64::from(ty) * TILE_PX - y0).round(),
                    href: src.url(z, tx, ty),
                });
            }
        }
        Frame {
            mercator: true,
            k: 0.0,
            scale,
            x0,
            y0,
            w,
            h,
            tiles: list,
        }
    }

    /// The pixel of a point.
    pub fn at(&self, lat: f64, lon: f64) -> (f64, f64) {
        if self.mercator {
            let (x, y) = mercator(lat, lon);
            (
                (x * self.scale - self.x0).round(),
                (y * self.scale - self.y0).round(),
            )
        } else {
            (
                (self.w / 2.0 + (lon - self.x0) * self.k * self.scale).round(),
                (self.h / 2.0 - (lat - self.y0) * self.scale).round(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn templates_are_checked() {
        let t =
            TileSource::parse("https://t0.tianditu.gov.cn/vec_w/wmts?z={z}&x={x}&y={y}").unwrap();
        assert_eq!(t.origin(), "https://t0.tianditu.gov.cn");
        for bad in [
            "ftp://x/{z}/{x}/{y}",
            "https://x/{z}/{x}",
            "https://x/{z}/{x}/{y}'; script-src *",
            "https://{s}.x/{z}/{x}/{y}",
            "x/{z}/{x}/{y}",
        ] {
            assert!(TileSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn points_land_inside_the_map_and_on_their_tiles() {
        let pts = [(34.62, 112.45), (34.60, 112.40), (34.65, 112.50)];
        let t = TileSource::parse("http://127.0.0.1:9/{z}/{x}/{y}.png").unwrap();
        for tiles in [None, Some(&t)] {
            let f = Frame::fit(&pts, 720.0, 480.0, 24.0, tiles);
            for &(lat, lon) in &pts {
                let (x, y) = f.at(lat, lon);
                assert!(
                    (0.0..=720.0).contains(&x) && (0.0..=480.0).contains(&y),
                    "{x},{y}"
                );
            }
            // North is up, east is right.
            let (xw, yn) = f.at(34.65, 112.40);
            let (xe, ys) = f.at(34.60, 112.50);
            assert!(xw < xe && yn < ys);
        }
        let f = Frame::fit(&pts, 720.0, 480.0, 24.0, Some(&t));
        assert!(!f.tiles.is_empty());
        // The tiles cover the whole map.
        assert!(f.tiles.iter().any(|t| t.x <= 0.0 && t.y <= 0.0));
        assert!(
            f.tiles
                .iter()
                .any(|t| t.x + 256.0 >= 720.0 && t.y + 256.0 >= 480.0)
        );
    }
}
