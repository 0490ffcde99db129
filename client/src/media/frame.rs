//! Raw video frames in I420 (YUV 4:2:0, 8 bits, three planes).

/// Why an [`I420Frame`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Width or height is zero, or larger than [`I420Frame::MAX_DIMENSION`].
    #[error("invalid frame size {width}x{height}")]
    InvalidSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// A plane does not have the length the frame size implies.
    #[error("plane {plane} has {got} bytes, expected {expected}")]
    PlaneLength {
        /// `'Y'`, `'U'` or `'V'`.
        plane: char,
        /// Actual length.
        got: usize,
        /// Length implied by the frame size.
        expected: usize,
    },
}

/// One I420 frame: a full-resolution Y plane and quarter-resolution U and V planes.
///
/// Planes are tightly packed: the stride of Y is `width`, the stride of U and V is
/// [`chroma_width`](Self::chroma_width) (`(width + 1) / 2`).
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: u32,
    height: u32,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    /// When the frame was captured, in microseconds since the UNIX epoch.
    pub capture_micros: u64,
    /// The source's sequence number for this frame (0 for the first one).
    pub frame_number: u64,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I420Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("capture_micros", &self.capture_micros)
            .field("frame_number", &self.frame_number)
            .finish_non_exhaustive()
    }
}

impl I420Frame {
    /// The largest width or height accepted (VP8 allows 16383).
    pub const MAX_DIMENSION: u32 = 16383;

    fn check_size(width: u32, height: u32) -> Result<(), FrameError> {
        if width == 0 || height == 0 || width > Self::MAX_DIMENSION || height > Self::MAX_DIMENSION
        {
            return Err(FrameError::InvalidSize { width, height });
        }
        Ok(())
    }

    /// A frame filled with black (Y 16, U and V 128, i.e. studio-range black).
    pub fn black(width: u32, height: u32) -> Result<Self, FrameError> {
        Self::check_size(width, height)?;
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Ok(Self {
            width,
            height,
            y: vec![16; w * h],
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
            capture_micros: 0,
            frame_number: 0,
        })
    }

    /// A frame from three tightly packed planes.
    pub fn from_planes(
        width: u32,
        height: u32,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
    ) -> Result<Self, FrameError> {
        Self::check_size(width, height)?;
        let (w, h) = (width as usize, height as usize);
        let chroma = w.div_ceil(2) * h.div_ceil(2);
        for (plane, got, expected) in [
            ('Y', y.len(), w * h),
            ('U', u.len(), chroma),
            ('V', v.len(), chroma),
        ] {
            if got != expected {
                return Err(FrameError::PlaneLength {
                    plane,
                    got,
                    expected,
                });
            }
        }
        Ok(Self {
            width,
            height,
            y,
            u,
            v,
            capture_micros: 0,
            frame_number: 0,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width of the U and V planes.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Height of the U and V planes.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// The Y (luma) plane, `width * height` bytes, row after row.
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// The U (Cb) plane, `chroma_width * chroma_height` bytes.
    pub fn u(&self) -> &[u8] {
        &self.u
    }

    /// The V (Cr) plane, `chroma_width * chroma_height` bytes.
    pub fn v(&self) -> &[u8] {
        &self.v
    }

    /// All three planes, mutably (their lengths cannot change).
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.y, &mut self.u, &mut self.v)
    }
}
