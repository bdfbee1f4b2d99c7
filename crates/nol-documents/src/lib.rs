//! Written documents as PDF: a notice (书面通知) or a report, laid out on A4 pages in Chinese.
//!
//! The glyphs come from a CJK font installed on the machine that writes the document (Debian's
//! `fonts-noto-cjk`, or the file `NOL_CJK_FONT` names); only the glyphs the document uses are
//! embedded (a subset, by `krilla`), with their Unicode mapping, so the PDF renders on a machine
//! with no fonts at all and its text can be searched and extracted.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use krilla::Document as PdfDocument;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};

/// Where Debian and other systems keep a CJK font with Simplified Chinese, in order of preference.
const KNOWN_FONTS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansSC-Regular.otf",
];

/// Why a document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(
        "no CJK font found (looked at NOL_CJK_FONT and {}); install Debian's fonts-noto-cjk or set NOL_CJK_FONT",
        KNOWN_FONTS.join(", ")
    )]
    NoFont,
    #[error("the font {path} cannot be read: {reason}")]
    BadFont { path: PathBuf, reason: String },
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

/// A CJK font, loaded once and shared.
#[derive(Clone)]
pub struct CjkFont {
    font: Font,
    data: Arc<Vec<u8>>,
    index: u32,
}

impl std::fmt::Debug for CjkFont {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CjkFont").field("index", &self.index).finish_non_exhaustive()
    }
}

impl CjkFont {
    /// The font `NOL_CJK_FONT` names, or the first of the known system fonts.
    pub fn find() -> Result<CjkFont, DocumentError> {
        if let Some(path) = std::env::var_os("NOL_CJK_FONT").filter(|path| !path.is_empty()) {
            return CjkFont::load(Path::new(&path));
        }
        let path = KNOWN_FONTS.iter().map(Path::new).find(|path| path.exists()).ok_or(DocumentError::NoFont)?;
        CjkFont::load(path)
    }

    /// Loads a font file; in a collection (.ttc) the Simplified Chinese face is chosen.
    pub fn load(path: &Path) -> Result<CjkFont, DocumentError> {
        let bad = |reason: String| DocumentError::BadFont { path: path.to_owned(), reason };
        let data = std::fs::read(path).map_err(|error| bad(error.to_string()))?;
        let faces = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
        let index = (0..faces)
            .find(|index| face_is_simplified_chinese(&data, *index))
            .or_else(|| (0..faces).find(|index| face_has(&data, *index, '国')))
            .ok_or_else(|| bad("no face of the font has Chinese characters".to_owned()))?;
        let data = Arc::new(data);
        let font =
            Font::new(krilla::Data::from(data.clone()), index).ok_or_else(|| bad("unreadable face".to_owned()))?;
        Ok(CjkFont { font, data, index })
    }

    /// The advance of `text` at `size`, in points.
    fn width(&self, text: &str, size: f32) -> f32 {
        let Ok(face) = ttf_parser::Face::parse(&self.data, self.index) else {
            return text.chars().count() as f32 * size;
        };
        let per_unit = size / f32::from(face.units_per_em());
        text.chars()
            .map(|character| {
                face.glyph_index(character)
                    .and_then(|glyph| face.glyph_hor_advance(glyph))
                    .map(|advance| f32::from(advance) * per_unit)
                    .unwrap_or(size)
            })
            .sum()
    }
}

fn face_is_simplified_chinese(data: &[u8], index: u32) -> bool {
    let Ok(face) = ttf_parser::Face::parse(data, index) else { return false };
    face.names().into_iter().any(|name| {
        name.name_id == ttf_parser::name_id::POST_SCRIPT_NAME
            && name.to_string().is_some_and(|text| text.contains("CJKsc") || text.contains("SC-"))
    })
}

fn face_has(data: &[u8], index: u32, character: char) -> bool {
    ttf_parser::Face::parse(data, index).is_ok_and(|face| face.glyph_index(character).is_some())
}

/// A4 in points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 64.0;
const BODY_SIZE: f32 = 12.0;

/// How a line of text sits on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

/// One block of a document, laid out top to bottom.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading, centred (the notice's title).
    Title(String),
    /// A line of its own, aligned (a document number, a date, a signature).
    Line { text: String, align: Align, size: f32 },
    /// Running text, wrapped to the page (first line indented by two characters, as Chinese
    /// documents are).
    Paragraph(String),
    /// Label and value pairs in two columns (姓名: 张三).
    Fields(Vec<(String, String)>),
    /// A table with a header row; columns share the width by `widths` (relative).
    Table { header: Vec<String>, rows: Vec<Vec<String>>, widths: Vec<f32> },
    /// Vertical space, in points.
    Space(f32),
}

/// A document: its blocks, and the footer each page carries (with the page number appended).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    pub blocks: Vec<Block>,
    pub footer: String,
}

/// The state of layout: the page being filled and how far down it is.
struct Layout<'a> {
    font: &'a CjkFont,
    document: PdfDocument,
    pages: Vec<Vec<Placed>>,
    y: f32,
}

/// A thing placed on a page: text at a baseline, or a horizontal rule.
enum Placed {
    Text { x: f32, y: f32, size: f32, text: String },
    Rule { x1: f32, x2: f32, y: f32 },
}

impl Layout<'_> {
    fn room(&mut self, height: f32) {
        if self.y + height > PAGE_HEIGHT - MARGIN - 24.0 {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn place(&mut self, placed: Placed) {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        if let Some(page) = self.pages.last_mut() {
            page.push(placed);
        }
    }

    fn line(&mut self, text: &str, align: Align, size: f32) {
        let height = size * 1.7;
        self.room(height);
        let width = self.font.width(text, size);
        let x = match align {
            Align::Left => MARGIN,
            Align::Center => (PAGE_WIDTH - width) / 2.0,
            Align::Right => PAGE_WIDTH - MARGIN - width,
        };
        self.y += height;
        self.place(Placed::Text { x, y: self.y, size, text: text.to_owned() });
    }

    /// Breaks `text` into lines no wider than `width` (by character: Chinese has no spaces).
    fn wrap(&self, text: &str, size: f32, width: f32, indent: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            let mut available = width - indent;
            for character in paragraph.chars() {
                let mut next = line.clone();
                next.push(character);
                if self.font.width(&next, size) > available && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    available = width;
                }
                line.push(character);
            }
            lines.push(line);
        }
        lines
    }

    fn paragraph(&mut self, text: &str) {
        let indent = BODY_SIZE * 2.0;
        let lines = self.wrap(text, BODY_SIZE, PAGE_WIDTH - 2.0 * MARGIN, indent);
        for (number, line) in lines.iter().enumerate() {
            self.room(BODY_SIZE * 1.8);
            self.y += BODY_SIZE * 1.8;
            let x = if number == 0 { MARGIN + indent } else { MARGIN };
            self.place(Placed::Text { x, y: self.y, size: BODY_SIZE, text: line.clone() });
        }
    }

    fn fields(&mut self, fields: &[(String, String)]) {
        let label_width =
            fields.iter().map(|(label, _)| self.font.width(label, BODY_SIZE)).fold(0.0_f32, f32::max) + BODY_SIZE;
        let value_width = PAGE_WIDTH - 2.0 * MARGIN - label_width;
        for (label, value) in fields {
            let lines = self.wrap(value, BODY_SIZE, value_width, 0.0);
            for (number, line) in lines.iter().enumerate() {
                self.room(BODY_SIZE * 1.8);
                self.y += BODY_SIZE * 1.8;
                if number == 0 {
                    self.place(Placed::Text { x: MARGIN, y: self.y, size: BODY_SIZE, text: label.clone() });
                }
                self.place(Placed::Text { x: MARGIN + label_width, y: self.y, size: BODY_SIZE, text: line.clone() });
            }
        }
    }

    fn table(&mut self, header: &[String], rows: &[Vec<String>], widths: &[f32]) {
        let size = BODY_SIZE - 2.0;
        let total: f32 = widths.iter().sum::<f32>().max(1.0);
        let full = PAGE_WIDTH - 2.0 * MARGIN;
        let columns: Vec<f32> = widths.iter().map(|width| width / total * full).collect();
        let row_of = |layout: &mut Self, cells: &[String]| {
            let height = size * 1.9;
            layout.room(height);
            layout.y += height;
            let mut x = MARGIN;
            for (cell, width) in cells.iter().zip(&columns) {
                let mut text = cell.clone();
                while layout.font.width(&text, size) > width - 4.0 && text.chars().count() > 1 {
                    text.pop();
                }
                layout.place(Placed::Text { x: x + 2.0, y: layout.y, size, text });
                x += width;
            }
            layout.place(Placed::Rule { x1: MARGIN, x2: MARGIN + full, y: layout.y + size * 0.5 });
        };
        row_of(self, header);
        for row in rows {
            row_of(self, row);
        }
    }
}

impl Document {
    /// Lays the document out on A4 pages and writes the PDF.
    pub fn to_pdf(&self, font: &CjkFont) -> Result<Vec<u8>, DocumentError> {
        let mut layout = Layout { font, document: PdfDocument::new(), pages: vec![Vec::new()], y: MARGIN };
        for block in &self.blocks {
            match block {
                Block::Title(text) => {
                    layout.line(text, Align::Center, 20.0);
                    layout.y += 12.0;
                }
                Block::Line { text, align, size } => layout.line(text, *align, *size),
                Block::Paragraph(text) => layout.paragraph(text),
                Block::Fields(fields) => layout.fields(fields),
                Block::Table { header, rows, widths } => layout.table(header, rows, widths),
                Block::Space(height) => layout.y += height,
            }
        }
        let pages = std::mem::take(&mut layout.pages);
        let count = pages.len();
        let mut document = layout.document;
        let settings =
            PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).ok_or_else(|| DocumentError::Pdf("page size".into()))?;
        for (number, placed) in pages.into_iter().enumerate() {
            let mut page = document.start_page_with(settings.clone());
            let mut surface = page.surface();
            surface.set_fill(Some(Fill { paint: rgb::Color::black().into(), ..Default::default() }));
            for item in placed {
                match item {
                    Placed::Text { x, y, size, text } => {
                        surface.draw_text(
                            Point::from_xy(x, y),
                            font.font.clone(),
                            size,
                            &text,
                            false,
                            TextDirection::Auto,
                        );
                    }
                    Placed::Rule { x1, x2, y } => {
                        let mut path = PathBuilder::new();
                        path.move_to(x1, y);
                        path.line_to(x2, y);
                        if let Some(path) = path.finish() {
                            surface.set_stroke(Some(Stroke {
                                paint: rgb::Color::new(160, 160, 160).into(),
                                width: 0.5,
                                ..Default::default()
                            }));
                            surface.draw_path(&path);
                            surface.set_stroke(None);
                        }
                    }
                }
            }
            let footer = format!("{}  第 {} 页 / 共 {} 页", self.footer, number + 1, count);
            let width = font.width(&footer, 9.0);
            surface.draw_text(
                Point::from_xy((PAGE_WIDTH - width) / 2.0, PAGE_HEIGHT - MARGIN / 2.0),
                font.font.clone(),
                9.0,
                footer.trim(),
                false,
                TextDirection::Auto,
            );
            surface.finish();
            page.finish();
        }
        document.finish().map_err(|error| DocumentError::Pdf(format!("{error:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn font() -> CjkFont {
        CjkFont::find().expect("a CJK font: install Debian's fonts-noto-cjk (.ci/run does) or set NOL_CJK_FONT")
    }

    #[test]
    fn long_text_wraps_within_the_page() {
        let font = font();
        let layout = Layout { font: &font, document: PdfDocument::new(), pages: Vec::new(), y: MARGIN };
        let text = "根据《江苏省教育厅关于做好控辍保学工作的通知》要求，现将该生辍学案件移交贵局。".repeat(4);
        let lines = layout.wrap(&text, BODY_SIZE, 200.0, 24.0);
        assert!(lines.len() > 4, "{lines:?}");
        assert!(lines.iter().skip(1).all(|line| font.width(line, BODY_SIZE) <= 200.0));
        assert_eq!(lines.concat(), text);
    }

    #[test]
    fn a_document_embeds_only_a_subset_of_the_font() {
        let font = font();
        let document = Document {
            blocks: vec![
                Block::Title("关于移交辍学学生劝返工作的通知".into()),
                Block::Line { text: "玄教移〔2027〕1号".into(), align: Align::Center, size: 12.0 },
                Block::Paragraph("现将该生的辍学案件移交贵局。".into()),
                Block::Fields(vec![("姓名：".into(), "张小明".into())]),
                Block::Table {
                    header: vec!["区县".into(), "辍学".into()],
                    rows: vec![vec!["玄武区".into(), "3".into()]],
                    widths: vec![2.0, 1.0],
                },
            ],
            footer: "一个都不能少".into(),
        };
        let pdf = document.to_pdf(&font).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // The whole Noto Sans CJK face is ~19 MB; a subset of a few dozen glyphs is a few kB.
        assert!(pdf.len() < 200_000, "{} bytes", pdf.len());
    }
}
