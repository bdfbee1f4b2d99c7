//! A synthetic province for benchmarks (`nol gen`): schools, pupils, the household register and
//! the poverty registry as the CSV files bureaus send, with known findings planted in them.
//!
//! Every pupil's child appears in the household register. Beside them the register lists children
//! enrolled nowhere (the planted out-of-school children), numbers with a wrong check digit, and
//! children too young or too old for compulsory school (which the cross-check must ignore). The
//! poverty registry lists the registered-poor pupils, less some (flag unconfirmed), plus some
//! pupils not flagged (flag missing).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use nol_pii::ResidentId;
use nol_region::{RegionCode, RegionTree};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub province: RegionCode,
    pub counties: usize,
    pub schools: usize,
    pub pupils: usize,
    /// Children in the household register in all (pupils + planted + out of school age).
    pub household: usize,
    pub out_of_school: usize,
    pub poverty_mismatches: usize,
    pub bad_ids: usize,
    /// The day ages are reckoned on.
    pub as_of: NaiveDate,
}

impl SynthSpec {
    /// The province: 1,000,000 pupils in 5,000 schools across 100 counties; a household
    /// register of 1,050,000 with 2,000 out-of-school children, 500 poverty-flag mismatches, 300
    /// bad numbers.
    pub fn full(province: RegionCode) -> SynthSpec {
        SynthSpec {
            province,
            counties: 100,
            schools: 5_000,
            pupils: 1_000_000,
            household: 1_050_000,
            out_of_school: 2_000,
            poverty_mismatches: 500,
            bad_ids: 300,
            as_of: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap_or_default(),
        }
    }

    /// The same shape, `factor` times larger: schools, pupils, the register and what is planted
    /// grow; the counties stay 100. `times(10)` is issue 13's province of 10,000,000 pupils in
    /// 50,000 schools with a household register of 10,500,000.
    pub fn times(province: RegionCode, factor: usize) -> SynthSpec {
        let full = SynthSpec::full(province);
        let factor = factor.max(1);
        SynthSpec {
            schools: full.schools * factor,
            pupils: full.pupils * factor,
            household: full.household * factor,
            out_of_school: full.out_of_school * factor,
            poverty_mismatches: full.poverty_mismatches * factor,
            bad_ids: full.bad_ids * factor,
            ..full
        }
    }

    /// The size asked for: `divisor` times smaller when over 1, else `factor` times larger when
    /// over 1, else the full province (`nol gen --divide-by / --times`, `NOL_BENCH_DIVIDE / _SCALE`).
    pub fn sized(province: RegionCode, divisor: usize, factor: usize) -> SynthSpec {
        if divisor > 1 {
            SynthSpec::scaled(province, divisor)
        } else if factor > 1 {
            SynthSpec::times(province, factor)
        } else {
            SynthSpec::full(province)
        }
    }

    /// The same shape, `divisor` times smaller.
    pub fn scaled(province: RegionCode, divisor: usize) -> SynthSpec {
        let full = SynthSpec::full(province);
        SynthSpec {
            counties: (full.counties / divisor).max(2),
            schools: (full.schools / divisor).max(4),
            pupils: full.pupils / divisor,
            household: full.household / divisor,
            out_of_school: (full.out_of_school / divisor).max(4),
            poverty_mismatches: (full.poverty_mismatches / divisor).max(4),
            bad_ids: (full.bad_ids / divisor).max(2),
            ..full
        }
    }
}

/// The files written and what was planted in them (resident ID numbers, in clear: test data).
#[derive(Debug, Clone, Default)]
pub struct Synthetic {
    pub schools_csv: PathBuf,
    pub pupils_csv: PathBuf,
    pub household_csv: PathBuf,
    pub poverty_csv: PathBuf,
    pub planted_out_of_school: Vec<String>,
    pub planted_flag_unconfirmed: Vec<String>,
    pub planted_flag_missing: Vec<String>,
    pub planted_bad_ids: Vec<String>,
}

/// The `n`-th distinct resident ID number of `region`, born in the range after `first_birth`.
fn resident_id(region: &str, first_birth: NaiveDate, span_days: u64, n: u64) -> ResidentId {
    let birth = first_birth + Days::new(n % span_days);
    let sequence = (n / span_days) % 1000;
    ResidentId::from_parts(region, birth, sequence as u16)
        .unwrap_or_else(|_| unreachable!("generated numbers are valid"))
}

/// Writes the synthetic province's files into `dir`.
pub fn generate(spec: &SynthSpec, dir: &Path) -> anyhow::Result<Synthetic> {
    std::fs::create_dir_all(dir)?;
    let mut counties: Vec<RegionCode> = RegionTree::global()
        .nodes()
        .filter(|node| node.county_level && spec.province.contains(&node.code))
        .map(|node| node.code)
        .collect();
    counties.sort();
    anyhow::ensure!(counties.len() >= spec.counties, "{} has only {} counties", spec.province, counties.len());
    counties.truncate(spec.counties);

    let out = Synthetic {
        schools_csv: dir.join("schools.csv"),
        pupils_csv: dir.join("pupils.csv"),
        household_csv: dir.join("household.csv"),
        poverty_csv: dir.join("poverty.csv"),
        ..Synthetic::default()
    };
    let mut synthetic = out;
    let writer = |path: &Path| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?))
    };

    // Schools: spread over the counties; codes are the county code and a number.
    let mut schools = writer(&synthetic.schools_csv)?;
    writeln!(schools, "学校代码,学校名称,所在地,学段,办学性质")?;
    // Codes from 1000 up, clear of hand-made test schools (0001, 0002, ...).
    let school_code =
        |index: usize| format!("{}{:04}", counties[index % counties.len()], 1000 + index / counties.len());
    for index in 0..spec.schools {
        let county = counties[index % counties.len()];
        let level = match index % 20 {
            0..=15 => "小学",
            16..=18 => "初中",
            _ => "九年一贯制",
        };
        writeln!(schools, "{},{}第{}学校,{},{},公办", school_code(index), county.name(), index, county, level)?;
    }
    schools.flush()?;

    // School-age children were born between as_of - 16 years + 1 day and as_of - 6 years.
    let school_age_first =
        spec.as_of.checked_sub_months(chrono::Months::new(16 * 12)).unwrap_or_default() + Days::new(1);
    let span = 3_640u64; // just under ten years of birthdays, all of school age
    let mut pupils = writer(&synthetic.pupils_csv)?;
    let mut household = writer(&synthetic.household_csv)?;
    let mut poverty = writer(&synthetic.poverty_csv)?;
    writeln!(pupils, "姓名,身份证号,性别,出生日期,户籍地,学校代码,年级,建档立卡,贫困户编号")?;
    writeln!(household, "姓名,身份证号,出生日期,户籍地,现住地")?;
    writeln!(poverty, "姓名,身份证号,户编号,所在地")?;
    let poor_every = 33; // about 3 % of pupils are registered poor
    let half_mismatches = spec.poverty_mismatches / 2;
    let (mut unconfirmed, mut missing) = (0usize, 0usize);
    let mut numbered: std::collections::HashMap<(RegionCode, bool), u64> = std::collections::HashMap::new();
    for index in 0..spec.pupils {
        let school = index % spec.schools;
        let county = counties[school % counties.len()];
        // One in ten is a migrant child whose household registration is in another county.
        let migrant = index % 10 == 0;
        let hukou = if migrant { counties[(school + 1) % counties.len()] } else { county };
        // Numbered within the region of household registration (3,640 birthdays × 1,000
        // sequence numbers each): a county's own children from 0, the migrant children registered
        // there from half-way, so no two pupils share a number at any size this side of
        // 1,800,000 pupils a county.
        let counter = numbered.entry((hukou, migrant)).or_insert(0u64);
        let within = *counter + if migrant { 1_820_000 } else { 0 };
        *counter += 1;
        let id = resident_id(hukou.as_str(), school_age_first, span, within);
        let birth = id.birth_date();
        let age = spec.as_of.years_since(birth).unwrap_or(6);
        let grade = (i64::from(age) - 5).clamp(1, 9);
        let name = format!("学生{index}");
        let sex = if id.sex() == nol_pii::Sex::Male { "男" } else { "女" };
        let household_id = format!("H{}", index / 3);
        let poor = index % poor_every == 0;
        let (flagged, in_poverty) = if poor && unconfirmed < half_mismatches {
            // Flagged, but the poverty registry does not list the child.
            unconfirmed += 1;
            synthetic.planted_flag_unconfirmed.push(id.expose().to_owned());
            (true, false)
        } else if poor {
            (true, true)
        } else if index % poor_every == 1 && missing < half_mismatches {
            // Listed by the poverty registry, not flagged in the student record.
            missing += 1;
            synthetic.planted_flag_missing.push(id.expose().to_owned());
            (false, true)
        } else {
            (false, false)
        };
        writeln!(
            pupils,
            "{name},{},{sex},{birth},{hukou},{},{grade},{},{}",
            id.expose(),
            school_code(school),
            if flagged { "是" } else { "否" },
            if flagged { household_id.as_str() } else { "" }
        )?;
        writeln!(household, "{name},{},{birth},{hukou},{county}", id.expose())?;
        if in_poverty {
            writeln!(poverty, "{name},{},{household_id},{hukou}", id.expose())?;
        }
    }
    // Children enrolled nowhere: school age, in the register, in no school. Their numbers come
    // from a range no pupil uses (sequence 900 and up).
    let extra = |n: usize| -> ResidentId {
        let county = counties[n % counties.len()];
        let birth = school_age_first + Days::new((n as u64 * 11) % span);
        ResidentId::from_parts(county.as_str(), birth, 900 + (n / span as usize) as u16 % 100)
            .unwrap_or_else(|_| unreachable!("generated numbers are valid"))
    };
    for n in 0..spec.out_of_school {
        let id = extra(n);
        let county = counties[n % counties.len()];
        writeln!(household, "失学儿童{n},{},{},{county},{county}", id.expose(), id.birth_date())?;
        synthetic.planted_out_of_school.push(id.expose().to_owned());
    }
    // Numbers with a wrong check digit.
    for n in 0..spec.bad_ids {
        let valid = extra(spec.out_of_school + n);
        let county = counties[n % counties.len()];
        let mut text = valid.expose().to_owned();
        let last = text.pop().unwrap_or('0');
        text.push(if last == '1' { '2' } else { '1' });
        writeln!(household, "错号儿童{n},{text},{},{county},{county}", valid.birth_date())?;
        synthetic.planted_bad_ids.push(text);
    }
    // Children below or above compulsory-school age: listed, never suspects.
    let listed = spec.pupils + spec.out_of_school + spec.bad_ids;
    let too_young_first = spec.as_of.checked_sub_months(chrono::Months::new(5 * 12)).unwrap_or_default();
    for n in 0..spec.household.saturating_sub(listed) {
        let county = counties[n % counties.len()];
        // 300 birthdays × 1,000 sequence numbers a county: distinct up to 300,000 a county.
        let within = n / counties.len();
        let birth = too_young_first + Days::new((within % 300) as u64);
        let id = ResidentId::from_parts(county.as_str(), birth, (within / 300) as u16 % 1000)
            .unwrap_or_else(|_| unreachable!("generated numbers are valid"));
        writeln!(household, "幼儿{n},{},{},{county},{county}", id.expose(), id.birth_date())?;
    }
    pupils.flush()?;
    household.flush()?;
    poverty.flush()?;
    Ok(synthetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_province_has_what_was_planted() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SynthSpec::scaled(RegionCode::parse("320000").unwrap(), 1000);
        let synthetic = generate(&spec, dir.path()).unwrap();
        let lines = |path: &Path| std::fs::read_to_string(path).unwrap().lines().count() - 1;
        assert_eq!(lines(&synthetic.schools_csv), spec.schools);
        assert_eq!(lines(&synthetic.pupils_csv), spec.pupils);
        assert_eq!(lines(&synthetic.household_csv), spec.household);
        assert_eq!(synthetic.planted_out_of_school.len(), spec.out_of_school);
        assert_eq!(synthetic.planted_bad_ids.len(), spec.bad_ids);
        assert_eq!(
            synthetic.planted_flag_missing.len() + synthetic.planted_flag_unconfirmed.len(),
            spec.poverty_mismatches
        );
        let pupils = std::fs::read_to_string(&synthetic.pupils_csv).unwrap();
        let ids: std::collections::HashSet<&str> =
            pupils.lines().skip(1).map(|line| line.split(',').nth(1).unwrap()).collect();
        assert_eq!(ids.len(), spec.pupils, "every pupil's number is distinct");
        assert!(synthetic.planted_out_of_school.iter().all(|id| !ids.contains(id.as_str())));
    }
}
