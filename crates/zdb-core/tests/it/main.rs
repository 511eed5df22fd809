//! Integration tests of the engine: a model-based test (random operations, restarts and crashes that
//! cut the tail of the last data file) against a `BTreeMap` oracle in both modes, plus recovery,
//! namespace, history and scan checks on real files.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use zdb_core::{
    DEFAULT_NAMESPACE, Engine, EngineConfig, Error, Mode, Namespace, SetOutcome, Settings,
};

fn config(dir: &Path, mode: Mode) -> EngineConfig {
    EngineConfig {
        index_dir: dir.join("index"),
        data_dir: dir.join("data"),
        mode: Some(mode),
        datasize: 512 * 1024,
        default_maxsize: 0,
        sync_on_rotate: false,
        // Small, so that reads cross between the in-memory window and the file.
        read_cache_bytes: 4096,
    }
}

fn default_ns(engine: &mut Engine) -> &mut Namespace {
    &mut engine.get_mut(DEFAULT_NAMESPACE).unwrap().ns
}

#[derive(Debug, Clone)]
enum Op {
    /// User mode: key index; seq mode: `None` allocates, `Some(i)` updates the i-th allocated id.
    Set(Option<u8>, Vec<u8>),
    Del(u8),
    Restart,
    /// Cut this many bytes off the last data file, then restart.
    Crash(u16),
    Jump,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let value = prop::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        8 => (prop::option::weighted(0.8, 0u8..12), value).prop_map(|(k, v)| Op::Set(k, v)),
        3 => (0u8..12).prop_map(Op::Del),
        1 => Just(Op::Restart),
        2 => (1u16..400).prop_map(Op::Crash),
        1 => Just(Op::Jump),
    ]
}

/// A write the engine acknowledged, with where its data entry ends.
#[derive(Debug, Clone)]
struct Logged {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    file: u32,
    end: u64,
}

fn replay(log: &[Logged]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut oracle = BTreeMap::new();
    for entry in log {
        match &entry.value {
            Some(v) => oracle.insert(entry.key.clone(), v.clone()),
            None => oracle.remove(&entry.key),
        };
    }
    oracle
}

/// The id 0-db hands out next after the writes in `log`: one past the highest id, plus one for
/// every overwrite (0-db keeps the old entry's copy in a fresh index slot).
fn next_seq_id(log: &[Logged]) -> u64 {
    let mut live = std::collections::BTreeSet::new();
    let mut next = 0;
    for entry in log {
        let id = u64::from_le_bytes(entry.key[..].try_into().unwrap());
        if entry.value.is_none() {
            live.remove(&id);
        } else if !live.insert(id) {
            next += 1;
        }
        next = next.max(id + 1);
    }
    next
}

fn user_key(i: u8) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

fn run_model(mode: Mode, ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(config(dir.path(), mode)).unwrap();
    let mut log: Vec<Logged> = Vec::new();
    let mut ts = 1_000u32;
    for op in ops {
        ts += 1;
        match op {
            Op::Set(k, value) => {
                let ns = default_ns(&mut engine);
                let oracle = replay(&log);
                let key = match (mode, k) {
                    (Mode::User, k) => user_key(k.unwrap_or(0)),
                    (Mode::Seq, None) => Vec::new(),
                    (Mode::Seq, Some(i)) => {
                        let ids: Vec<&Vec<u8>> = oracle.keys().collect();
                        if ids.is_empty() {
                            continue;
                        }
                        ids[usize::from(i) % ids.len()].clone()
                    }
                };
                let outcome = ns.set(&key, &value, ts).unwrap();
                match outcome {
                    SetOutcome::Unchanged => {
                        assert_eq!(oracle.get(&key), Some(&value));
                    }
                    SetOutcome::Written(written) => {
                        if mode == Mode::Seq && key.is_empty() {
                            assert_eq!(written, next_seq_id(&log).to_le_bytes().to_vec());
                        }
                        let stats = ns.stats();
                        log.push(Logged {
                            key: written,
                            value: Some(value),
                            file: stats.current_file,
                            end: stats.current_offset,
                        });
                    }
                }
            }
            Op::Del(i) => {
                let oracle = replay(&log);
                let key = match mode {
                    Mode::User => user_key(i),
                    Mode::Seq => match oracle.keys().nth(usize::from(i)) {
                        Some(k) => k.clone(),
                        None => u64::from(i).to_le_bytes().to_vec(),
                    },
                };
                let ns = default_ns(&mut engine);
                match ns.delete(&key, ts) {
                    Ok(()) => {
                        assert!(oracle.contains_key(&key));
                        let stats = ns.stats();
                        log.push(Logged {
                            key,
                            value: None,
                            file: stats.current_file,
                            end: stats.current_offset,
                        });
                    }
                    Err(Error::KeyNotFound) => assert!(!oracle.contains_key(&key)),
                    Err(e) => panic!("delete failed: {e}"),
                }
            }
            Op::Restart => {
                engine.sync_all().unwrap();
                drop(engine);
                engine = Engine::open(config(dir.path(), mode)).unwrap();
            }
            Op::Crash(cut) => {
                // Acknowledged writes reached the OS; the index may still be behind.
                engine.commit().unwrap();
                let stats = default_ns(&mut engine).stats();
                drop(engine);
                let path = dir
                    .path()
                    .join("data")
                    .join(DEFAULT_NAMESPACE)
                    .join(format!("d{}", stats.current_file));
                let len = std::fs::metadata(&path).unwrap().len();
                let new_len = len.saturating_sub(u64::from(cut)).max(16);
                let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                file.set_len(new_len).unwrap();
                log.retain(|l| l.file != stats.current_file || l.end <= new_len);
                engine = Engine::open(config(dir.path(), mode)).unwrap();
            }
            Op::Jump => {
                default_ns(&mut engine).jump().unwrap();
            }
        }
        engine.commit().unwrap();
        check_against(default_ns(&mut engine), &replay(&log));
    }
}

fn check_against(ns: &mut Namespace, oracle: &BTreeMap<Vec<u8>, Vec<u8>>) {
    assert_eq!(ns.len(), oracle.len() as u64);
    for (key, value) in oracle {
        assert_eq!(ns.get(key).unwrap().as_ref(), Some(value), "key {key:?}");
        assert_eq!(ns.check(key).unwrap(), Some(true));
    }
    let live = ns.stats().live_bytes;
    assert_eq!(live, oracle.values().map(|v| v.len() as u64).sum::<u64>());
    for forward in [true, false] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            match ns.scan(cursor.as_deref(), forward, 3) {
                Ok(page) => {
                    seen.extend(page.entries.into_iter().map(|e| e.key));
                    cursor = Some(page.cursor);
                }
                Err(Error::NoMoreData) => break,
                Err(e) => panic!("scan failed: {e}"),
            }
        }
        seen.sort();
        let expected: Vec<Vec<u8>> = oracle.keys().cloned().collect();
        assert_eq!(seen, expected, "scan forward={forward}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn user_mode_matches_model(ops in prop::collection::vec(op_strategy(), 1..60)) {
        run_model(Mode::User, ops);
    }

    #[test]
    fn seq_mode_matches_model(ops in prop::collection::vec(op_strategy(), 1..60)) {
        run_model(Mode::Seq, ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever byte of the last data file is damaged, with the index behind (crash) or complete
    /// (clean stop), opening never fails or panics and every entry stored wholly before the damage
    /// reads back intact.
    #[test]
    fn damaged_data_never_breaks_recovery(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..30),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        clean in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(config(dir.path(), Mode::User)).unwrap();
        let mut ends = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let ns = default_ns(&mut engine);
            ns.set(format!("k{i}").as_bytes(), v, 1).unwrap();
            ends.push(ns.stats().current_offset);
        }
        if clean {
            engine.sync_all().unwrap();
        } else {
            engine.commit().unwrap();
        }
        drop(engine);
        let path = dir.path().join("data/default/d0");
        let mut bytes = std::fs::read(&path).unwrap();
        let offset = 16 + at.index(bytes.len() - 16);
        bytes[offset] ^= flip;
        std::fs::write(&path, &bytes).unwrap();
        let mut engine = Engine::open(config(dir.path(), Mode::User)).unwrap();
        let ns = default_ns(&mut engine);
        for (i, v) in values.iter().enumerate() {
            if ends[i] <= offset as u64 {
                let got = ns.get(format!("k{i}").as_bytes()).unwrap();
                prop_assert_eq!(got.as_ref(), Some(v));
            }
        }
    }
}

#[test]
fn missing_index_is_rebuilt_from_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(config(dir.path(), Mode::User)).unwrap();
    let ns = default_ns(&mut engine);
    for i in 0..50u32 {
        ns.set(format!("k{i}").as_bytes(), &i.to_le_bytes(), 7)
            .unwrap();
    }
    ns.jump().unwrap();
    ns.set(b"k1", b"new", 8).unwrap();
    ns.delete(b"k2", 9).unwrap();
    engine.sync_all().unwrap();
    drop(engine);
    for id in [0, 1] {
        std::fs::remove_file(dir.path().join(format!("index/default/i{id}"))).unwrap();
    }
    let mut engine = Engine::open(config(dir.path(), Mode::User)).unwrap();
    let ns = default_ns(&mut engine);
    assert_eq!(ns.len(), 49);
    assert_eq!(ns.get(b"k1").unwrap().unwrap(), b"new");
    assert_eq!(ns.get(b"k2").unwrap(), None);
    assert_eq!(ns.get(b"k3").unwrap().unwrap(), 3u32.to_le_bytes());
    assert_eq!(ns.stats().recovered_index_entries, 52);
}

#[test]
fn garbage_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(config(dir.path(), Mode::User)).unwrap();
    default_ns(&mut engine).set(b"a", b"1", 1).unwrap();
    engine.sync_all().unwrap();
    drop(engine);
    let path = dir.path().join("data/default/d0");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0xAB; 100]);
    std::fs::write(&path, &bytes).unwrap();
    let mut engine = Engine::open(config(dir.path(), Mode::User)).unwrap();
    let ns = default_ns(&mut engine);
    assert_eq!(ns.stats().recovered_bytes_cut, 100);
    assert_eq!(ns.get(b"a").unwrap().unwrap(), b"1");
    ns.set(b"b", b"2", 2).unwrap();
    engine.sync_all().unwrap();
    drop(engine);
    let mut engine = Engine::open(config(dir.path(), Mode::User)).unwrap();
    assert_eq!(default_ns(&mut engine).len(), 2);
}

#[test]
fn history_walks_back_through_versions_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(config(dir.path(), Mode::User)).unwrap();
    let ns = default_ns(&mut engine);
    ns.set(b"k", b"v1", 1).unwrap();
    ns.jump().unwrap();
    ns.set(b"k", b"v2", 2).unwrap();
    ns.set(b"k", b"v3", 3).unwrap();
    let mut versions = Vec::new();
    let mut item = ns.history(b"k", None).unwrap();
    loop {
        versions.push((item.ts, item.payload.clone()));
        match item.previous {
            Some(prev) => item = ns.history(b"k", Some(&prev)).unwrap(),
            None => break,
        }
    }
    assert_eq!(
        versions,
        vec![
            (3, b"v3".to_vec()),
            (2, b"v2".to_vec()),
            (1, b"v1".to_vec())
        ]
    );
    let first = ns.history(b"k", None).unwrap().previous.unwrap();
    assert!(matches!(
        ns.history(b"other", Some(&first)),
        Err(Error::InvalidHistoryKey)
    ));
    assert!(matches!(ns.history(b"nope", None), Err(Error::KeyNotFound)));
}

#[test]
fn namespace_rules_worm_quota_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), Mode::User);
    cfg.mode = None;
    let mut engine = Engine::open(cfg.clone()).unwrap();
    assert!(matches!(
        engine.create("default"),
        Err(Error::NameNotAllowed)
    ));
    assert!(matches!(engine.create("a/b"), Err(Error::NameNotAllowed)));
    engine.create("ns").unwrap();
    assert!(matches!(engine.create("ns"), Err(Error::NamespaceExists)));
    let ns = &mut engine.get_mut("ns").unwrap().ns;
    let settings = Settings {
        password: Some(b"pw".to_vec()),
        public: false,
        worm: true,
        maxsize: 10,
        mode: Mode::User,
    };
    ns.update_settings(settings.clone()).unwrap();
    ns.set(b"a", b"12345", 1).unwrap();
    assert!(matches!(ns.set(b"a", b"x", 1), Err(Error::Worm)));
    assert_eq!(ns.set(b"a", b"12345", 1).unwrap(), SetOutcome::Unchanged);
    assert!(matches!(ns.delete(b"a", 1), Err(Error::WormDelete)));
    assert!(matches!(ns.set(b"b", b"123456", 1), Err(Error::NoSpace)));
    ns.set(b"b", b"12345", 1).unwrap();
    let mut seq = settings.clone();
    seq.mode = Mode::Seq;
    assert!(matches!(ns.update_settings(seq), Err(Error::ModeInUse)));
    engine.sync_all().unwrap();
    drop(engine);
    let mut engine = Engine::open(cfg).unwrap();
    assert_eq!(engine.get("ns").unwrap().ns.settings(), &settings);
    engine.delete("ns").unwrap();
    assert!(engine.get("ns").is_none());
    assert!(!dir.path().join("data/ns").exists());
}

/// 0-db's own suite (tests/zdb_default.c): SET new gives 0, an overwrite of 0 spends id 1, DEL 0,
/// then SET new gives 2. The spent id stays spent after a restart and holds nothing.
#[test]
fn seq_overwrite_spends_an_id_as_0db_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(config(dir.path(), Mode::Seq)).unwrap();
    let ns = default_ns(&mut engine);
    let id = |n: u64| n.to_le_bytes().to_vec();
    assert_eq!(
        ns.set(b"", b"world", 1).unwrap(),
        SetOutcome::Written(id(0))
    );
    assert_eq!(
        ns.set(&id(0), b"worldnewdata", 2).unwrap(),
        SetOutcome::Written(id(0))
    );
    ns.delete(&id(0), 3).unwrap();
    assert_eq!(
        ns.set(b"", b"helloworld", 4).unwrap(),
        SetOutcome::Written(id(2))
    );
    assert_eq!(ns.get(&id(1)).unwrap(), None);
    assert!(matches!(ns.set(&id(1), b"x", 5), Err(Error::OnlyUpdate)));
    assert_eq!(ns.stats().next_id, 3);
    for clean in [true, false] {
        if clean {
            engine.sync_all().unwrap();
        } else {
            // Crash: the index file is behind and is rebuilt from the data file.
            engine.commit().unwrap();
            std::fs::remove_file(dir.path().join("index/default/i0")).unwrap();
        }
        drop(engine);
        engine = Engine::open(config(dir.path(), Mode::Seq)).unwrap();
        let ns = default_ns(&mut engine);
        assert_eq!(ns.stats().next_id, 3, "clean stop: {clean}");
        assert_eq!(ns.get(&id(2)).unwrap().as_deref(), Some(&b"helloworld"[..]));
        assert_eq!(ns.get(&id(1)).unwrap(), None);
    }
    let ns = default_ns(&mut engine);
    assert_eq!(ns.set(b"", b"next", 6).unwrap(), SetOutcome::Written(id(3)));
}

#[test]
fn rotation_happens_at_datasize() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(config(dir.path(), Mode::Seq)).unwrap();
    let ns = default_ns(&mut engine);
    let value = vec![7u8; 100 * 1024];
    for _ in 0..12 {
        ns.set(b"", &value, 1).unwrap();
    }
    assert!(ns.stats().current_file >= 2);
    assert_eq!(ns.get(&0u64.to_le_bytes()).unwrap().unwrap(), value);
    assert!(matches!(
        ns.set(&99u64.to_le_bytes(), b"x", 1),
        Err(Error::OnlyUpdate)
    ));
    engine.sync_all().unwrap();
    drop(engine);
    let mut engine = Engine::open(config(dir.path(), Mode::Seq)).unwrap();
    assert_eq!(default_ns(&mut engine).len(), 12);
    drop(engine);
    let mut other = config(dir.path(), Mode::User);
    other.mode = Some(Mode::User);
    assert!(matches!(
        Engine::open(other),
        Err(Error::ModeMismatch { .. })
    ));
}
