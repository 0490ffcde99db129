//! Screenshots as RGB images: Xvfb's framebuffer file (XWD) or a WebDriver PNG in, PNG out,
//! and a look at a region's pixels.

use std::path::Path;

/// An 8-bit RGB image, rows top to bottom.
#[derive(Debug, Clone)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rgb {
    /// Reads an XWD file as Xvfb's `-fbdir` writes it (`<dir>/Xvfb_screen0`): a big-endian
    /// header of 32-bit fields, a colormap, then 32 bpp pixels in the server's byte order.
    pub fn from_xwd(bytes: &[u8]) -> Result<Self, String> {
        let field = |i: usize| -> Result<u32, String> {
            bytes
                .get(i * 4..i * 4 + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| "XWD header cut short".to_owned())
        };
        let header_size = field(0)? as usize;
        let (width, height) = (field(4)?, field(5)?);
        let lsb_first = field(7)? == 0;
        let bits_per_pixel = field(11)?;
        let bytes_per_line = field(12)? as usize;
        let ncolors = field(19)? as usize;
        if bits_per_pixel != 32 {
            return Err(format!(
                "XWD with {bits_per_pixel} bits per pixel (want 32)"
            ));
        }
        let start = header_size + ncolors * 12;
        let need = start + bytes_per_line * height as usize;
        if bytes.len() < need {
            return Err(format!("XWD has {} bytes, needs {need}", bytes.len()));
        }
        let mut data = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height as usize {
            let row = &bytes[start + y * bytes_per_line..];
            for x in 0..width as usize {
                let p = &row[x * 4..x * 4 + 4];
                // 0x00RRGGBB in the server's byte order.
                let (r, g, b) = if lsb_first {
                    (p[2], p[1], p[0])
                } else {
                    (p[1], p[2], p[3])
                };
                data.extend_from_slice(&[r, g, b]);
            }
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Decodes a PNG (as a WebDriver screenshot comes), dropping alpha.
    pub fn from_png(bytes: &[u8]) -> Result<Self, String> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| "PNG too large".to_owned())?;
        let mut buf = vec![0; size];
        let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
        let channels = info.color_type.samples();
        let mut data = Vec::with_capacity(info.width as usize * info.height as usize * 3);
        for y in 0..info.height as usize {
            let row = &buf[y * info.line_size..];
            for x in 0..info.width as usize {
                let p = &row[x * channels..];
                if channels >= 3 {
                    data.extend_from_slice(&p[..3]);
                } else {
                    data.extend_from_slice(&[p[0], p[0], p[0]]);
                }
            }
        }
        Ok(Self {
            width: info.width,
            height: info.height,
            data,
        })
    }

    pub fn write_png(&self, path: &Path) -> Result<(), String> {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&self.data)
            .map_err(|e| e.to_string())
    }

    /// How many distinct colours (quantised to 4 bits per channel) `rect` holds, sampling
    /// every 4th pixel: a black or flat tile has 1–2, the test pattern dozens.
    pub fn colours_in(&self, rect: Rect) -> usize {
        let mut seen = std::collections::HashSet::new();
        let x_end = (rect.x + rect.w).min(self.width);
        let y_end = (rect.y + rect.h).min(self.height);
        for y in (rect.y..y_end).step_by(4) {
            for x in (rect.x..x_end).step_by(4) {
                let i = (y as usize * self.width as usize + x as usize) * 3;
                let p = &self.data[i..i + 3];
                seen.insert((p[0] >> 4, p[1] >> 4, p[2] >> 4));
            }
        }
        seen.len()
    }

    /// An FNV-1a hash of `rect`'s pixels (every 2nd pixel of every 2nd row): changes when what
    /// is drawn there changes.
    pub fn hash_in(&self, rect: Rect) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let x_end = (rect.x + rect.w).min(self.width);
        let y_end = (rect.y + rect.h).min(self.height);
        for y in (rect.y..y_end).step_by(2) {
            for x in (rect.x..x_end).step_by(2) {
                let i = (y as usize * self.width as usize + x as usize) * 3;
                for &b in &self.data[i..i + 3] {
                    hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_xwd_and_round_trips_through_png() {
        // 2×1 image, LSB first: red, blue.
        let mut header = [0u32; 25];
        header[0] = 100; // header size
        header[4] = 2; // width
        header[5] = 1; // height
        header[7] = 0; // LSBFirst
        header[11] = 32; // bits per pixel
        header[12] = 8; // bytes per line
        header[19] = 0; // ncolors
        let mut bytes: Vec<u8> = header.iter().flat_map(|v| v.to_be_bytes()).collect();
        bytes.extend_from_slice(&[0, 0, 255, 0, 255, 0, 0, 0]);
        let img = Rgb::from_xwd(&bytes).expect("parses");
        assert_eq!(img.data, vec![255, 0, 0, 0, 0, 255]);
        let dir = std::env::temp_dir().join(format!("vr-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("x.png");
        img.write_png(&path).expect("writes");
        let back = Rgb::from_png(&std::fs::read(&path).expect("reads")).expect("decodes");
        assert_eq!((back.width, back.height, &back.data), (2, 1, &img.data));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            img.colours_in(Rect {
                x: 0,
                y: 0,
                w: 2,
                h: 1
            }),
            1,
            "every 4th pixel: only the first"
        );
    }
}
