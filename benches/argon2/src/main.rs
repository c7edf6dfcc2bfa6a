//! Times argon2id hash verification at m=19456 KiB, t=2, p=1 (Portcullis's defaults, OWASP):
//! one thread, N verifications after a warm-up; prints JSON with median/p90/min/mean in ms.
//! Like the server (src/crypto/password.rs), each verification reuses one block of working
//! memory instead of allocating and zeroing 19 MiB, so the figure is the hash alone.
//!
//!     bench-argon2 [N] [m_kib] [t] [p]

use std::time::Instant;

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: u32| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (n, m, t, p) = (arg(0, 30), arg(1, 19456), arg(2, 2), arg(3, 1));
    let params = Params::new(m, t, p, None).map_err(|e| e.to_string())?;
    let a2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = b"portcullis-bench-salt";
    let password = b"correct horse battery staple";
    let mut memory = vec![Block::default(); params.block_count()];
    let mut expected = [0u8; 32];
    a2.hash_password_into_with_memory(password, salt, &mut expected, &mut memory)
        .map_err(|e| e.to_string())?;
    let verify = |memory: &mut [Block]| -> Result<(), String> {
        let mut out = [0u8; 32];
        a2.hash_password_into_with_memory(password, salt, &mut out, memory)
            .map_err(|e| e.to_string())?;
        if out == expected { Ok(()) } else { Err("mismatch".into()) }
    };
    // Warm-up.
    for _ in 0..3 {
        verify(&mut memory)?;
    }
    let mut ms = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t0 = Instant::now();
        verify(&mut memory)?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let q = |f: f64| ms[((ms.len() - 1) as f64 * f).round() as usize];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    println!(
        "{{\"impl\":\"argon2 crate 0.5.3 (Rust), reused memory\",\"m_kib\":{m},\"t\":{t},\"p\":{p},\"n\":{n},\"median_ms\":{:.3},\"p90_ms\":{:.3},\"min_ms\":{:.3},\"mean_ms\":{:.3}}}",
        q(0.5),
        q(0.9),
        ms[0],
        mean
    );
    Ok(())
}
