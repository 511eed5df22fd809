//! Errors a user must understand: a wrong key, corrupt or missing metadata, too few metadata
//! backends, a bad config, a file outside the root; and the binary's commands and exit codes.

use crate::{Cluster, META_NS, META_PASSWORD, fails, hash_file, ok, write_noise, zstor_cli};
use zstor::zdb::Conn;
use zstor::{Config, Error, Zstor, meta};

const ALL: [usize; 6] = [0, 1, 2, 3, 4, 5];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_corrupt_and_missing_metadata() {
    let cluster = Cluster::start(6, 3).await;
    let zstor = cluster.zstor(&ALL);
    let input = cluster.path("in");
    write_noise(&input, 300_000, 1);
    zstor.store_file("f", &input).await.unwrap();
    let output = cluster.path("out");

    let other_key = cluster
        .config_text(&ALL, "")
        .replace(crate::KEY, &"11".repeat(32));
    let wrong = Zstor::new(Config::parse(&other_key).unwrap()).unwrap();
    let err = wrong.retrieve_file("f", &output).await.unwrap_err();
    assert!(matches!(err, Error::WrongKey { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "metadata of \"f\" was written with another encryption key: check [encryption] key in the config"
    );

    let err = zstor.retrieve_file("nope", &output).await.unwrap_err();
    assert_eq!(err.to_string(), "nothing is stored under key \"nope\"");

    // One copy overwritten with garbage: the others win, and a rebuild writes it again.
    let meta_key = meta::meta_key("test", "f");
    let mut conns = Vec::new();
    for zdb in &cluster.meta {
        conns.push(
            Conn::connect(&zdb.backend(META_NS, META_PASSWORD))
                .await
                .unwrap(),
        );
    }
    conns[0].set(meta_key.as_bytes(), b"garbage").await.unwrap();
    zstor.retrieve_file("f", &output).await.unwrap();
    assert_eq!(hash_file(&output), hash_file(&input));
    let report = zstor.check("f").await.unwrap();
    assert_eq!((report.meta_copies, report.meta_backends), (2, 3));
    assert!(!report.is_healthy());
    assert_eq!(zstor.rebuild("f").await.unwrap().meta_copies, 3);
    assert!(zstor.check("f").await.unwrap().is_healthy());

    // Every copy corrupt: said so, not "not found".
    let mut record = conns[1]
        .get(meta_key.as_bytes())
        .await
        .unwrap()
        .unwrap()
        .to_vec();
    let last = record.len() - 1;
    record[last] ^= 1;
    for conn in &mut conns {
        conn.set(meta_key.as_bytes(), &record).await.unwrap();
    }
    let err = zstor.retrieve_file("f", &output).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "corrupt metadata for \"f\": authentication failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_needs_a_majority_to_write_and_one_copy_to_read() {
    let mut cluster = Cluster::start(6, 3).await;
    let zstor = cluster.zstor(&ALL);
    let input = cluster.path("in");
    write_noise(&input, 50_000, 2);
    zstor.store_file("f", &input).await.unwrap();

    cluster.meta[0].kill();
    cluster.meta[1].kill();
    let err = zstor.store_file("g", &input).await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "too few metadata backends reachable to look up metadata: 2 needed, 1 reachable ("
        ),
        "{err}"
    );
    let output = cluster.path("out");
    zstor.retrieve_file("f", &output).await.unwrap();
    assert_eq!(hash_file(&output), hash_file(&input));

    cluster.meta[2].kill();
    let err = zstor.retrieve_file("f", &output).await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "too few metadata backends reachable to look up metadata: 2 needed, 0 reachable ("
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_stores_checks_and_retrieves_below_its_root() {
    let mut cluster = Cluster::start(6, 3).await;
    let root = cluster.path("root");
    std::fs::create_dir_all(root.join("photos")).unwrap();
    let config = cluster.write_config(&ALL, &format!("root = \"{}\"", root.display()));
    let file = root.join("photos/cat.jpg");
    write_noise(&file, 5 << 20, 3);
    let expect = hash_file(&file);
    let file_arg = file.to_str().unwrap();

    let out = ok(zstor_cli(&config, &["store", "-f", file_arg]));
    assert_eq!(
        out,
        "stored photos/cat.jpg: 5242880 bytes, 2 chunks, 4+2 shards\n"
    );
    let out = ok(zstor_cli(&config, &["store", "-f", file_arg]));
    assert_eq!(
        out,
        "unchanged photos/cat.jpg: 5242880 bytes already stored\n"
    );
    assert_eq!(ok(zstor_cli(&config, &["list"])), "photos/cat.jpg\n");
    let out = ok(zstor_cli(&config, &["check", "-f", file_arg]));
    assert!(out.contains("status: healthy"), "{out}");
    assert!(out.contains(&format!("checksum: {expect}")), "{out}");
    let out = ok(zstor_cli(&config, &["status"]));
    assert_eq!(out.lines().count(), 9, "{out}");
    assert!(
        out.contains("mode sequential") && out.contains("mode userkey"),
        "{out}"
    );

    std::fs::remove_file(&file).unwrap();
    ok(zstor_cli(&config, &["retrieve", "-f", file_arg]));
    assert_eq!(hash_file(&file), expect);

    fails(
        zstor_cli(&config, &["store", "-f", "/etc/hostname"]),
        "error: /etc/hostname is not under the root",
    );
    cluster.data[1].kill();
    let out = zstor_cli(&config, &["check", "-k", "photos/cat.jpg"]);
    assert_eq!(out.status.code(), Some(1), "check exits 1 when degraded");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("unreachable (") && text.contains("status: degraded"),
        "{text}"
    );
    fails(
        zstor_cli(&config, &["status"]),
        "unreachable: cannot connect",
    );
    fails(
        zstor_cli(&config, &["rebuild", "--all"]),
        "error: rebuilding photos/cat.jpg: too few backends reachable to rebuild \"photos/cat.jpg\": 1 needed, 0 reachable",
    );

    let bad = cluster.path("bad.toml");
    std::fs::write(
        &bad,
        cluster.config_text(&ALL, "").replace(crate::KEY, "abcd"),
    )
    .unwrap();
    fails(
        zstor_cli(&bad, &["status"]),
        "encryption key is 2 bytes, 32 needed (64 hex digits)",
    );
    std::fs::write(&bad, cluster.config_text(&ALL[..5], "")).unwrap();
    fails(
        zstor_cli(&bad, &["status"]),
        "5 data backends configured, 6 needed (data_shards + parity_shards)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_backend_that_is_not_sequential_is_refused_with_its_reason() {
    let cluster = Cluster::start(6, 3).await;
    let data5 = format!(
        "address = \"{}\"\nnamespace = \"{}\"\npassword = \"{}\"",
        cluster.data[5].address(),
        crate::DATA_NS,
        crate::DATA_PASSWORD
    );
    let user_mode = crate::Zdb::start("user");
    user_mode.create_namespace("kv", "pw").await;
    let meta0 = format!(
        "address = \"{}\"\nnamespace = \"kv\"\npassword = \"pw\"",
        user_mode.address()
    );
    let text = cluster.config_text(&ALL, "");
    assert!(text.contains(&data5));
    let zstor = Zstor::new(Config::parse(&text.replace(&data5, &meta0)).unwrap()).unwrap();
    let input = cluster.path("in");
    write_noise(&input, 1000, 5);
    let err = zstor.store_file("f", &input).await.unwrap_err();
    let expect = format!(
        "too few backends reachable to store: 6 needed, 5 reachable ({}/kv: namespace mode is userkey, sequential needed)",
        user_mode.address()
    );
    assert_eq!(err.to_string(), expect);
}
