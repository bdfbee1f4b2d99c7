//! `nol gen`: writes a synthetic province (schools, pupils, household register, poverty registry)
//! with known findings planted, for benchmarks and trials.

use std::path::Path;

use nol_region::RegionCode;
use nol_stack::synth::{SynthSpec, generate};

pub fn run(out: &Path, province: &str, divisor: usize, times: usize) -> anyhow::Result<()> {
    let province = RegionCode::parse(province)?;
    let spec = SynthSpec::sized(province, divisor, times);
    let started = std::time::Instant::now();
    let synthetic = generate(&spec, out)?;
    println!(
        "{} schools, {} pupils, {} children in the household register ({} out of school, {} bad numbers), \
         {} poverty-flag mismatches, written to {} in {:.1}s",
        spec.schools,
        spec.pupils,
        spec.household,
        synthetic.planted_out_of_school.len(),
        synthetic.planted_bad_ids.len(),
        synthetic.planted_flag_missing.len() + synthetic.planted_flag_unconfirmed.len(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    for path in [&synthetic.schools_csv, &synthetic.pupils_csv, &synthetic.household_csv, &synthetic.poverty_csv] {
        println!("  {}", path.display());
    }
    Ok(())
}
