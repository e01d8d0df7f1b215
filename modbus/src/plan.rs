//! Read planning: a device's acquired points coalesced into as few requests as its profile
//! allows — contiguous or nearly contiguous registers in one read, never more than the
//! profile's `max_read_registers`, never across a gap wider than its `readable_gap` (the
//! unmapped registers the device accepts in a read).

use crate::codec::{Request, MAX_READ_BITS};
use busbar_core::profile::{Profile, Table};

/// One read request of a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadBlock {
    pub table: Table,
    pub address: u16,
    pub count: u16,
    /// Profile point indexes decoded from this block.
    pub points: Vec<usize>,
    /// Every point is a constant (identification): read once, then now and then.
    pub identity: bool,
}

impl ReadBlock {
    /// The read request for this block.
    pub fn request(&self) -> Request {
        let (address, count) = (self.address, self.count);
        match self.table {
            Table::Holding => Request::ReadHoldingRegisters { address, count },
            Table::Input => Request::ReadInputRegisters { address, count },
            Table::Coil => Request::ReadCoils { address, count },
            Table::Discrete => Request::ReadDiscreteInputs { address, count },
        }
    }
}

/// Plan the reads of `acquired` (profile point indexes).
pub fn plan(profile: &Profile, acquired: &[usize]) -> Vec<ReadBlock> {
    let mut pts: Vec<usize> = acquired.iter().copied().filter(|&k| k < profile.points.len()).collect();
    pts.sort_by_key(|&k| {
        let r = &profile.points[k].register;
        (r.table, r.address)
    });
    let mut blocks: Vec<ReadBlock> = Vec::new();
    let gap = u32::from(profile.readable_gap);
    for k in pts {
        let p = &profile.points[k];
        let span = p.register.span();
        let max = if p.register.table.is_bits() {
            u32::from(MAX_READ_BITS)
        } else {
            u32::from(profile.max_read_registers)
        };
        if let Some(b) = blocks.last_mut() {
            let start = u32::from(b.address);
            let end = start + u32::from(b.count);
            let new_end = end.max(span.end);
            if b.table == p.register.table && span.start <= end + gap && new_end - start <= max {
                b.count = (new_end - start) as u16;
                b.points.push(k);
                b.identity &= p.constant.is_some();
                continue;
            }
        }
        blocks.push(ReadBlock {
            table: p.register.table,
            address: p.register.address,
            count: (span.end - span.start) as u16,
            points: vec![k],
            identity: p.constant.is_some(),
        });
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use busbar_core::profile::embedded;

    #[test]
    fn socomec_meter_needs_seven_reads_along_its_gaps() {
        let set = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        let p = &set["socomec-diris-a40"];
        let all: Vec<usize> = (0..p.points.len()).collect();
        let b = plan(p, &all);
        let ranges: Vec<(u16, u16, bool)> = b.iter().map(|b| (b.address, b.count, b.identity)).collect();
        assert_eq!(
            ranges,
            vec![
                (50000, 2, true),
                (50004, 1, true),
                (50050, 8, true),
                (50512, 38, false),
                (50780, 2, false),
                (50786, 2, false),
                (51536, 6, false)
            ]
        );
        assert_eq!(b.iter().map(|b| b.points.len()).sum::<usize>(), p.points.len());
    }

    #[test]
    fn a_readable_gap_merges_and_the_limit_splits() {
        let set = embedded::profiles().unwrap_or_else(|e| panic!("{e}"));
        // SunSpec: readable gaps, one model is 107 registers: header + model in one read.
        let p = &set["sunspec-meter-203"];
        let all: Vec<usize> = (0..p.points.len()).collect();
        let b = plan(p, &all);
        assert!(b.iter().all(|b| b.count <= 125));
        assert_eq!(b.len(), 2, "{b:?}");
        // VISY tanks: 16 tanks x 32 registers + sums split at 125 registers.
        let t = &set["fafnir-visy-tanks"];
        let all: Vec<usize> = (0..t.points.len()).collect();
        let b = plan(t, &all);
        assert!(b.iter().all(|b| b.count <= 125));
        assert!(b.len() <= 6, "{} reads", b.len());
        // Only the first 5 tanks.
        let five: Vec<usize> = (0..t.points.len())
            .filter(|&k| {
                t.points[k]
                    .block
                    .as_ref()
                    .is_none_or(|bl| bl.name != "tank" || bl.index <= 5)
            })
            .collect();
        let b = plan(t, &five);
        let last = b.last().map(|b| u32::from(b.address) + u32::from(b.count)).unwrap_or(0);
        assert!(last <= 256 + 5 * 32, "reads stop after tank 5: {last}");
    }
}
