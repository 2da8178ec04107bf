//! The pairing QR code as a PNG: black modules on white, 4 pixels each, with the 4-module
//! quiet zone ISO/IEC 18004 asks for.

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per module.
pub const SCALE: usize = 4;
/// Modules of white border.
pub const QUIET_ZONE: usize = 4;

/// `text` as a grayscale PNG.
pub fn png(text: &str) -> Result<Vec<u8>, String> {
    let code = QrCode::with_error_correction_level(text, EcLevel::M).map_err(|e| e.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let mut pixels = vec![0xffu8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (index % modules + QUIET_ZONE, index / modules + QUIET_ZONE);
        for dy in 0..SCALE {
            let row = (y * SCALE + dy) * side;
            if let Some(run) = pixels.get_mut(row + x * SCALE..row + (x + 1) * SCALE) {
                run.fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let side = u32::try_from(side).map_err(|e| e.to_string())?;
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_back_to_the_text() {
        let uri = "otpauth://totp/portcullis:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                   &issuer=portcullis&algorithm=SHA1&digits=6&period=30";
        let bytes = png(uri).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width as usize % SCALE, 0);
        let (w, h) = (info.width as usize, info.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
    }
}
