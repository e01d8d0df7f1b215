//! A device's register image, laid out from its profile: the registers a simulated device
//! serves. Mapped addresses are grouped into segments; a read must fall inside one segment
//! (a profile's `readable_gap` lets small gaps join segments, served as 0).

use crate::encoding::{self, EncodingError};
use crate::profile::{Constant, Kind, Profile, Table};

#[derive(Debug, Clone)]
struct Segment {
    start: u16,
    words: Vec<u16>,
}

impl Segment {
    fn end(&self) -> u32 {
        u32::from(self.start) + self.words.len() as u32
    }
}

#[derive(Debug, Clone, Default)]
struct TableImage {
    segments: Vec<Segment>,
}

impl TableImage {
    fn locate(&self, address: u16, count: u16) -> Option<(usize, usize)> {
        let i = self.segments.partition_point(|s| s.start <= address);
        let seg = self.segments.get(i.checked_sub(1)?)?;
        let off = usize::from(address - seg.start);
        if u32::from(address) + u32::from(count) <= seg.end() {
            Some((i - 1, off))
        } else {
            None
        }
    }
}

/// Where a point's words live in the image.
#[derive(Debug, Clone, Copy)]
struct Slot {
    table: usize,
    segment: usize,
    offset: usize,
    words: usize,
}

/// The read address range is not (entirely) mapped: Modbus exception 02.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal data address")]
pub struct Unmapped;

fn table_index(t: Table) -> usize {
    match t {
        Table::Coil => 0,
        Table::Discrete => 1,
        Table::Input => 2,
        Table::Holding => 3,
    }
}

/// The registers of one device.
#[derive(Debug, Clone)]
pub struct RegisterImage {
    tables: [TableImage; 4],
    slots: Vec<Slot>,
}

impl RegisterImage {
    /// Lay out the image for `profile`, with constants encoded and everything else zero.
    pub fn new(profile: &Profile) -> RegisterImage {
        RegisterImage::with_ranges(profile, &[])
    }

    /// The image for `profile` that also maps `extra` ranges `(table, start, count)`: a device
    /// replayed from a trace serves every block the trace read, mapped by the profile or not.
    pub fn with_ranges(profile: &Profile, extra: &[(Table, u16, u16)]) -> RegisterImage {
        let mut tables: [TableImage; 4] = Default::default();
        let gap = u32::from(profile.readable_gap);
        for (ti, table) in tables.iter_mut().enumerate() {
            let mut spans: Vec<(u32, u32)> = profile
                .points
                .iter()
                .filter(|p| table_index(p.register.table) == ti)
                .map(|p| (p.register.span().start, p.register.span().end))
                .chain(
                    extra
                        .iter()
                        .filter(|(t, _, _)| table_index(*t) == ti)
                        .map(|(_, start, count)| (u32::from(*start), u32::from(*start) + u32::from(*count))),
                )
                .collect();
            spans.sort_unstable();
            let mut merged: Vec<(u32, u32)> = Vec::new();
            for (s, e) in spans {
                match merged.last_mut() {
                    Some(last) if s <= last.1 + gap => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            table.segments = merged
                .into_iter()
                .map(|(s, e)| Segment {
                    start: s as u16,
                    words: vec![0; (e - s) as usize],
                })
                .collect();
        }
        let slots = profile
            .points
            .iter()
            .map(|p| {
                let ti = table_index(p.register.table);
                let words = usize::from(p.register.data_type.words());
                // Every point's span is inside a segment by construction.
                let (segment, offset) = tables[ti].locate(p.register.address, words as u16).unwrap_or((0, 0));
                Slot {
                    table: ti,
                    segment,
                    offset,
                    words,
                }
            })
            .collect();
        let mut image = RegisterImage { tables, slots };
        for (i, p) in profile.points.iter().enumerate() {
            match &p.constant {
                Some(Constant::Number(n)) => {
                    let _ = image.set(profile, i, *n);
                }
                Some(Constant::Text(t)) => {
                    let _ = image.set_text(profile, i, t);
                }
                None => {}
            }
        }
        image
    }

    /// Registers (or bits, one per word) `address..address+count` of a table.
    pub fn read(&self, table: Table, address: u16, count: u16) -> Result<&[u16], Unmapped> {
        let t = &self.tables[table_index(table)];
        let (s, off) = t.locate(address, count).ok_or(Unmapped)?;
        Ok(&t.segments[s].words[off..off + usize::from(count)])
    }

    /// Overwrite raw registers (used for accepted writes and for injected garbage).
    pub fn write(&mut self, table: Table, address: u16, values: &[u16]) -> Result<(), Unmapped> {
        let t = &mut self.tables[table_index(table)];
        let count = u16::try_from(values.len()).map_err(|_| Unmapped)?;
        let (s, off) = t.locate(address, count).ok_or(Unmapped)?;
        t.segments[s].words[off..off + values.len()].copy_from_slice(values);
        Ok(())
    }

    /// The words of point `index`.
    pub fn point_words(&self, index: usize) -> &[u16] {
        match self.slots.get(index) {
            Some(sl) => &self.tables[sl.table].segments[sl.segment].words[sl.offset..sl.offset + sl.words],
            None => &[],
        }
    }

    fn point_words_mut(&mut self, index: usize) -> &mut [u16] {
        match self.slots.get(index) {
            Some(sl) => &mut self.tables[sl.table].segments[sl.segment].words[sl.offset..sl.offset + sl.words],
            None => &mut [],
        }
    }

    /// Encode a numeric engineering value into point `index`.
    pub fn set(&mut self, profile: &Profile, index: usize, value: f64) -> Result<(), EncodingError> {
        let Some(p) = profile.points.get(index) else {
            return Ok(());
        };
        if p.register.table.is_bits() {
            let w = self.point_words_mut(index);
            if let Some(first) = w.first_mut() {
                *first = u16::from(value.round() != 0.0);
            }
            return Ok(());
        }
        if p.kind == Kind::String {
            return self.set_text(profile, index, &format!("{value}"));
        }
        encoding::encode(&p.register, p.kind, value, self.point_words_mut(index))
    }

    /// Encode text into a string point.
    pub fn set_text(&mut self, profile: &Profile, index: usize, text: &str) -> Result<(), EncodingError> {
        if index >= profile.points.len() {
            return Ok(());
        }
        encoding::encode_text(text, self.point_words_mut(index))
    }

    /// Decode point `index` back to an engineering value.
    pub fn get(&self, profile: &Profile, index: usize) -> Result<f64, EncodingError> {
        let Some(p) = profile.points.get(index) else {
            return Err(EncodingError::NotFinite);
        };
        if p.register.table.is_bits() {
            return Ok(f64::from(self.point_words(index).first().copied().unwrap_or(0) & 1));
        }
        encoding::decode(&p.register, self.point_words(index))
    }

    /// The mapped ranges of a table as `(start, count)`: what a client may read in one go.
    pub fn segments(&self, table: Table) -> Vec<(u16, u16)> {
        self.tables[table_index(table)]
            .segments
            .iter()
            .map(|s| (s.start, s.words.len() as u16))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::parse_profile;

    const P: &str = r#"
profile: p
manufacturer: t
model: t
family: meter
points:
  - { name: ident, kind: string, address: 10, type: ascii, length: 2, value: SOCO }
  - { name: v1, unit: V, kind: analog, address: 20, type: u32, scale: 0.01, range: [0, 500] }
  - { name: f, unit: Hz, kind: analog, address: 22, scale: 0.01, range: [40, 70] }
  - { name: relay, kind: binary, table: coil, address: 5 }
"#;

    #[test]
    fn reads_inside_segments_only() {
        let profile = parse_profile("p.yaml", P, None).unwrap_or_else(|e| panic!("{e}"));
        let mut img = RegisterImage::new(&profile);
        assert_eq!(img.read(Table::Holding, 10, 2), Ok(&[0x534f, 0x434f][..]));
        let v1 = profile.point_index("v1").unwrap_or(0);
        img.set(&profile, v1, 231.5).unwrap_or_default();
        assert_eq!(img.read(Table::Holding, 20, 3), Ok(&[0, 23150, 0][..]));
        assert_eq!(img.read(Table::Holding, 12, 1), Err(Unmapped), "gap between segments");
        assert_eq!(img.read(Table::Holding, 21, 3), Err(Unmapped), "runs past the end");
        assert_eq!(img.read(Table::Input, 20, 1), Err(Unmapped), "other table");
        assert_eq!(img.get(&profile, v1), Ok(231.5));
        assert_eq!(img.segments(Table::Holding), vec![(10, 2), (20, 3)]);
        assert_eq!(img.read(Table::Coil, 5, 1), Ok(&[0][..]));
    }
}
