//! GB/T 2260 administrative division codes (`PPCCDD`) and the tree they form.
//!
//! Every user belongs to one node and sees that node and everything below it, never a sibling.
//! The full tree (3,351 nodes) is compiled into the binary from `data/regions-gbt2260.csv`, so a
//! code is validated once at the edge and the rest of the system handles [`RegionCode`] only.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// The level of a node in the administrative tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegionLevel {
    /// 省级: province, autonomous region or municipality.
    Province,
    /// 地级: city (设区市), prefecture or league.
    City,
    /// 县级: county or district. The bureaus that own cases sit here.
    County,
}

impl RegionLevel {
    /// How many leading digits of a code the nodes below a node of this level share with it.
    fn significant_digits(self) -> usize {
        match self {
            RegionLevel::Province => 2,
            RegionLevel::City => 4,
            RegionLevel::County => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RegionLevel::Province => "province",
            RegionLevel::City => "city",
            RegionLevel::County => "county",
        }
    }
}

/// A validated six-digit GB/T 2260 code that names a node of the tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode([u8; 6]);

/// Why a string is not a region code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionCodeError {
    #[error("a region code has 6 digits (GB/T 2260), got {0:?}")]
    Malformed(String),
    #[error("{0} is not a code of the GB/T 2260 administrative tree")]
    Unknown(String),
    #[error("{code} ({name}) is not a county-level region")]
    NotCounty { code: String, name: &'static str },
}

impl From<RegionCodeError> for nol_messages::Msg {
    fn from(error: RegionCodeError) -> nol_messages::Msg {
        error.message()
    }
}

impl RegionCodeError {
    /// What a person reads, from the catalogue.
    pub fn message(&self) -> nol_messages::Msg {
        use nol_messages::Common;
        match self {
            RegionCodeError::Malformed(text) => Common::RegionMalformed { text: text.clone() },
            RegionCodeError::Unknown(code) => Common::RegionUnknown { code: code.clone() },
            RegionCodeError::NotCounty { code, name } => {
                Common::RegionNotCounty { code: code.clone(), name: (*name).to_owned() }
            }
        }
        .into()
    }
}

impl RegionCode {
    /// Parses and checks a code against the tree.
    pub fn parse(text: &str) -> Result<Self, RegionCodeError> {
        let trimmed = text.trim();
        let bytes = trimmed.as_bytes();
        if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(RegionCodeError::Malformed(trimmed.chars().take(32).collect()));
        }
        let mut digits = [0u8; 6];
        digits.copy_from_slice(bytes);
        let code = RegionCode(digits);
        if !RegionTree::global().nodes.contains_key(&code) {
            return Err(RegionCodeError::Unknown(trimmed.to_owned()));
        }
        Ok(code)
    }

    /// Parses a code that must name a county-level unit (a case's owner, a hukou region).
    pub fn parse_county(text: &str) -> Result<Self, RegionCodeError> {
        let code = RegionCode::parse(text)?;
        if !code.is_leaf() {
            return Err(RegionCodeError::NotCounty { code: code.to_string(), name: code.name() });
        }
        Ok(code)
    }

    pub fn as_str(&self) -> &str {
        // The bytes were checked to be ASCII digits on construction.
        std::str::from_utf8(&self.0).unwrap_or("000000")
    }

    pub fn node(&self) -> &'static RegionNode {
        &RegionTree::global().nodes[self]
    }

    pub fn level(&self) -> RegionLevel {
        self.node().level
    }

    pub fn name(&self) -> &'static str {
        &self.node().name
    }

    pub fn parent(&self) -> Option<RegionCode> {
        self.node().parent
    }

    /// The province this node belongs to (itself for a province).
    pub fn province(&self) -> RegionCode {
        let mut digits = *b"000000";
        digits[..2].copy_from_slice(&self.0[..2]);
        RegionCode(digits)
    }

    /// True when `other` is this node or lies below it.
    pub fn contains(&self, other: &RegionCode) -> bool {
        let digits = self.level().significant_digits();
        self.0[..digits] == other.0[..digits]
    }

    /// A migrant child (随迁子女) studies or lives in this county while the household is
    /// registered (户籍) elsewhere: `hukou_region` (its code, or a longer code that starts with it)
    /// is not this county.
    pub fn is_migrant_here(&self, hukou_region: &str) -> bool {
        hukou_region.get(..6) != Some(self.as_str())
    }

    /// The digits every code in this node's subtree starts with; `LIKE prefix || '%'` in SQL.
    pub fn subtree_prefix(&self) -> &str {
        &self.as_str()[..self.level().significant_digits()]
    }

    /// True when the node is a county-level unit (no node lies below it). Three cities without
    /// districts (东莞市, 中山市, 儋州市) are listed by the standard both as a city and as their own
    /// county-level unit; they are leaves too.
    pub fn is_leaf(&self) -> bool {
        self.node().county_level
    }

    /// Full name from the province down, e.g. `安徽省阜阳市临泉县`.
    pub fn full_name(&self) -> String {
        let mut names = vec![self.name()];
        let mut cursor = self.parent();
        while let Some(code) = cursor {
            names.push(code.name());
            cursor = code.parent();
        }
        names.reverse();
        names.retain(|name| *name != "市辖区" && *name != "县");
        names.concat()
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({})", self.as_str())
    }
}

impl FromStr for RegionCode {
    type Err = RegionCodeError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RegionCode::parse(text)
    }
}

impl TryFrom<String> for RegionCode {
    type Error = RegionCodeError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        RegionCode::parse(&text)
    }
}

impl From<RegionCode> for String {
    fn from(code: RegionCode) -> String {
        code.as_str().to_owned()
    }
}

/// One node of the administrative tree.
#[derive(Debug, Clone)]
pub struct RegionNode {
    pub code: RegionCode,
    pub name: String,
    pub level: RegionLevel,
    pub parent: Option<RegionCode>,
    /// The node is a county-level unit (a county, or a city without districts).
    pub county_level: bool,
}

/// The whole GB/T 2260 tree, loaded once.
pub struct RegionTree {
    nodes: HashMap<RegionCode, RegionNode>,
    rows: usize,
}

const REGIONS_CSV: &str = include_str!("../data/regions-gbt2260.csv");

impl RegionTree {
    pub fn global() -> &'static RegionTree {
        static TREE: OnceLock<RegionTree> = OnceLock::new();
        TREE.get_or_init(|| RegionTree::from_csv(REGIONS_CSV))
    }

    fn from_csv(text: &str) -> RegionTree {
        let mut nodes: HashMap<RegionCode, RegionNode> = HashMap::new();
        let mut rows = 0;
        for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
            let fields: Vec<&str> = line.split(',').collect();
            let raw_code = |field: &str| -> RegionCode {
                let mut digits = [0u8; 6];
                digits.copy_from_slice(field.as_bytes());
                RegionCode(digits)
            };
            let level = match fields[2] {
                "province" => RegionLevel::Province,
                "city" => RegionLevel::City,
                _ => RegionLevel::County,
            };
            let code = raw_code(fields[0]);
            let parent = (!fields[3].is_empty()).then(|| raw_code(fields[3]));
            rows += 1;
            if let Some(existing) = nodes.get_mut(&code) {
                // A city without districts, listed again as its own county-level unit.
                existing.county_level |= level == RegionLevel::County;
                continue;
            }
            nodes.insert(
                code,
                RegionNode {
                    code,
                    name: fields[1].to_owned(),
                    level,
                    parent,
                    county_level: level == RegionLevel::County,
                },
            );
        }
        RegionTree { nodes, rows }
    }

    /// Distinct codes in the tree.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Entries of the standard (a city without districts is listed twice).
    pub fn entries(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &RegionNode> {
        self.nodes.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_has_every_node_of_the_standard() {
        let tree = RegionTree::global();
        assert_eq!(tree.entries(), 3351);
        assert_eq!(tree.len(), 3348);
        let count = |level| tree.nodes().filter(|node| node.level == level).count();
        assert_eq!(count(RegionLevel::Province), 31);
        assert_eq!(count(RegionLevel::City), 342);
        assert_eq!(tree.nodes().filter(|node| node.county_level).count(), 2978);
        let dongguan = RegionCode::parse("441900").unwrap();
        assert_eq!(dongguan.level(), RegionLevel::City);
        assert!(dongguan.is_leaf());
        assert!(!RegionCode::parse("320100").unwrap().is_leaf());
    }

    #[test]
    fn parent_links_agree_with_code_prefixes() {
        for node in RegionTree::global().nodes() {
            if let Some(parent) = node.parent {
                assert!(parent.contains(&node.code), "{:?} under {:?}", node.code, parent);
                assert!(parent.level() < node.level);
            } else {
                assert_eq!(node.level, RegionLevel::Province);
            }
        }
    }

    #[test]
    fn scope_is_the_subtree_and_never_a_sibling() {
        let jiangsu = RegionCode::parse("320000").unwrap();
        let nanjing = RegionCode::parse("320100").unwrap();
        let xuanwu = RegionCode::parse("320102").unwrap();
        let qinhuai = RegionCode::parse("320104").unwrap();
        let linquan = RegionCode::parse("341221").unwrap();
        assert!(jiangsu.contains(&xuanwu));
        assert!(nanjing.contains(&xuanwu));
        assert!(xuanwu.contains(&xuanwu));
        assert!(!xuanwu.contains(&qinhuai));
        assert!(!xuanwu.contains(&nanjing));
        assert!(!jiangsu.contains(&linquan));
        assert_eq!(linquan.province().as_str(), "340000");
        assert_eq!(linquan.full_name(), "安徽省阜阳市临泉县");
        assert_eq!(nanjing.subtree_prefix(), "3201");
    }

    #[test]
    fn rejects_malformed_and_unknown_codes() {
        assert!(matches!(RegionCode::parse("32010"), Err(RegionCodeError::Malformed(_))));
        assert!(matches!(RegionCode::parse("32010x"), Err(RegionCodeError::Malformed(_))));
        assert!(matches!(RegionCode::parse("329999"), Err(RegionCodeError::Unknown(_))));
        assert!(matches!(RegionCode::parse_county("320100"), Err(RegionCodeError::NotCounty { .. })));
        assert!(RegionCode::parse_county("441900").is_ok());
    }
}
