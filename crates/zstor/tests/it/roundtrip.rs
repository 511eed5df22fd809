//! Round trips, byte for byte: sizes around the chunk boundaries, compressible and random content,
//! both ciphers, no compression, a 256 MiB file through the binary with its memory watched, and
//! deduplication of unchanged content.

use crate::{Cluster, hash_file, ok, write_noise, zstor_cli};
use std::time::Duration;
use zstor::config::{CipherKind, CompressionKind};
use zstor::{Config, StoreOutcome, Zstor, limits};

const ALL: [usize; 6] = [0, 1, 2, 3, 4, 5];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_around_chunk_boundaries_come_back_byte_for_byte() {
    let cluster = Cluster::start(6, 3).await;
    let zstor = cluster.zstor(&ALL);
    let chunk = u64::from(limits::CHUNK_BYTES);
    for (i, size) in [0, 1, 1000, chunk - 1, chunk, chunk + 1, 3 * chunk + 12_345]
        .into_iter()
        .enumerate()
    {
        let input = cluster.path(&format!("in-{i}"));
        write_noise(&input, size, i as u64 + 1);
        let key = format!("files/{i}");
        let stored = zstor.store_file(&key, &input).await.unwrap();
        let StoreOutcome::Stored(meta) = stored else {
            panic!("{key} was new")
        };
        assert_eq!(meta.size_bytes, size);
        assert_eq!(meta.chunk_count() as u64, size.div_ceil(chunk));
        let output = cluster.path(&format!("out-{i}"));
        zstor.retrieve_file(&key, &output).await.unwrap();
        assert_eq!(
            std::fs::read(&output).unwrap(),
            std::fs::read(&input).unwrap(),
            "{key}"
        );
    }
    let mut keys = zstor.list().await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 7);
    assert_eq!(keys[0], "files/0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressible_content_both_ciphers_and_no_compression() {
    let cluster = Cluster::start(6, 3).await;
    let text: Vec<u8> = (0..400_000u32)
        .flat_map(|i| format!("line {i}: the grid stores this text\n").into_bytes())
        .collect();
    let input = cluster.path("text");
    std::fs::write(&input, &text).unwrap();
    for (cipher, compression) in [
        (CipherKind::Aes256Gcm, CompressionKind::Zstd),
        (CipherKind::ChaCha20Poly1305, CompressionKind::Zstd),
        (CipherKind::ChaCha20Poly1305, CompressionKind::None),
    ] {
        let mut config = Config::parse(&cluster.config_text(&ALL, "")).unwrap();
        config.encryption.algorithm = cipher;
        config.compression.algorithm = compression;
        let zstor = Zstor::new(config).unwrap();
        let key = format!("text-{cipher:?}-{compression:?}");
        let meta = zstor.store_file(&key, &input).await.unwrap().meta().clone();
        let sealed: u64 = meta.sealed_lens.iter().map(|&l| u64::from(l)).sum();
        match compression {
            CompressionKind::Zstd => {
                assert!(sealed < text.len() as u64 / 4, "{sealed} bytes sealed")
            }
            CompressionKind::None => assert!(sealed > text.len() as u64),
        }
        // Read back with the default config: the file's own cipher and compression are in its metadata.
        let output = cluster.path("text-out");
        cluster
            .zstor(&ALL)
            .retrieve_file(&key, &output)
            .await
            .unwrap();
        assert!(std::fs::read(&output).unwrap() == text, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_content_is_not_stored_twice() {
    let cluster = Cluster::start(6, 3).await;
    let zstor = cluster.zstor(&ALL);
    let input = cluster.path("f");
    write_noise(&input, 100_000, 9);
    let first = zstor.store_file("f", &input).await.unwrap();
    assert!(matches!(first, StoreOutcome::Stored(_)));
    let again = zstor.store_file("f", &input).await.unwrap();
    assert!(matches!(again, StoreOutcome::Unchanged(_)));
    write_noise(&input, 100_000, 10);
    let changed = zstor.store_file("f", &input).await.unwrap();
    let StoreOutcome::Stored(meta) = changed else {
        panic!("new content is stored")
    };
    assert!(meta.generation > first.meta().generation);
    let output = cluster.path("f-out");
    zstor.retrieve_file("f", &output).await.unwrap();
    assert_eq!(hash_file(&output), hash_file(&input));
}

/// Peak resident memory (VmHWM) of a process, in KiB, while it runs.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_file_streams_through_the_binary_in_bounded_memory() {
    const SIZE: u64 = 256 << 20;
    let cluster = Cluster::start(6, 3).await;
    let root = cluster.path("root");
    std::fs::create_dir(&root).unwrap();
    let config = cluster.write_config(&ALL, &format!("root = \"{}\"", root.display()));
    let input = root.join("big.bin");
    write_noise(&input, SIZE, 42);
    let expect = hash_file(&input);

    // Store through the binary, watching its peak memory.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zstor"))
        .arg("--config")
        .arg(&config)
        .args(["store", "--file"])
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(peak_kib(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stored big.bin: 268435456 bytes, 64 chunks")
    );
    // Chunks in flight, not the file: far below its 256 MiB.
    assert!(
        peak > 0 && peak < 128 << 10,
        "peak resident memory {peak} KiB"
    );

    std::fs::remove_file(&input).unwrap();
    let out = ok(zstor_cli(&config, &["retrieve", "--key", "big.bin"]));
    assert!(out.contains("retrieved big.bin: 268435456 bytes"), "{out}");
    assert_eq!(hash_file(&input), expect);
}
