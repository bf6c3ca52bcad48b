//! A mail corpus generator for tests and benchmarks: nested folders, spaces and non-ASCII
//! names, special-use folders, sizes from 1 KB up, flags and keywords, varied dates, messages
//! without Message-ID, reused Message-IDs, exact duplicates, 8-bit headers and malformed MIME.
//! Deterministic for a seed, so a failing run can be repeated.

use time::OffsetDateTime;

/// One message to seed: folder, bytes, flags, INTERNALDATE.
#[derive(Debug, Clone)]
pub struct SeedMessage {
    pub folder: String,
    pub bytes: Vec<u8>,
    pub flags: Vec<&'static str>,
    pub internaldate: OffsetDateTime,
}

/// A tiny deterministic generator (xorshift), enough for reproducible corpora.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const FLAG_SETS: &[&[&str]] = &[
    &[],
    &["\\Seen"],
    &["\\Seen", "\\Answered"],
    &["\\Flagged"],
    &["\\Seen", "$Label1"],
    &["\\Seen", "\\Flagged", "Project-X"],
    &["\\Draft"],
];

fn body_text(rng: &mut Rng, size: usize) -> String {
    const WORDS: &[&str] = &[
        "mailbox",
        "ferry",
        "quarterly",
        "report",
        "lunch",
        "migration",
        "über",
        "naïve",
        "budget",
        "meeting",
    ];
    let mut out = String::with_capacity(size + 80);
    let mut line = 0;
    while out.len() < size {
        out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        line += 1;
        if line % 12 == 0 {
            out.push_str("\r\n");
        } else {
            out.push(' ');
        }
    }
    out.push_str("\r\n");
    out
}

/// A plain message of about `size` bytes.
pub fn message(
    rng: &mut Rng,
    n: u64,
    message_id: Option<&str>,
    subject: &str,
    size: usize,
    date: OffsetDateTime,
) -> Vec<u8> {
    let mut m = String::new();
    m.push_str(&format!("From: Sender {n} <sender{n}@old.example>\r\n"));
    m.push_str("To: Ann <ann@old.example>\r\n");
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!(
        "Date: {}\r\n",
        date.format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default()
    ));
    if let Some(id) = message_id {
        m.push_str(&format!("Message-ID: {id}\r\n"));
    }
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
    m.push_str(&body_text(rng, size));
    m.into_bytes()
}

/// The test corpus: about 90 messages in 6 folders with every awkward case once or more.
/// `big` adds one message of that many bytes to INBOX.
pub fn test_corpus(seed: u64, big: Option<usize>) -> Vec<SeedMessage> {
    let mut rng = Rng::new(seed);
    let base =
        OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut out = Vec::new();
    let folders = [
        ("INBOX", 40u64),
        ("Sent", 12),
        ("Projects/2024/Ärger", 10),
        ("Folder with spaces", 6),
        ("Archive/Old", 8),
    ];
    let mut n = 0u64;
    for (folder, count) in folders {
        for _ in 0..count {
            n += 1;
            let date = base + time::Duration::seconds((rng.below(3 * 365 * 86_400)) as i64);
            let size = 800 + rng.below(20_000) as usize;
            let id = format!("<msg{n}.{seed}@old.example>");
            let flags = FLAG_SETS[rng.below(FLAG_SETS.len() as u64) as usize].to_vec();
            out.push(SeedMessage {
                folder: folder.into(),
                bytes: message(
                    &mut rng,
                    n,
                    Some(&id),
                    &format!("Message {n} in {folder}"),
                    size,
                    date,
                ),
                flags,
                internaldate: date,
            });
        }
    }
    // Messages without Message-ID.
    for i in 0..4 {
        let date = base + time::Duration::days(i);
        out.push(SeedMessage {
            folder: "INBOX".into(),
            bytes: message(&mut rng, 1000 + i as u64, None, "no id here", 1500, date),
            flags: vec!["\\Seen"],
            internaldate: date,
        });
    }
    // Two different messages sharing one Message-ID (mailing lists, broken clients).
    for i in 0..2 {
        let date = base + time::Duration::days(40 + i);
        out.push(SeedMessage {
            folder: "INBOX".into(),
            bytes: message(
                &mut rng,
                2000 + i as u64,
                Some("<reused@old.example>"),
                &format!("reused id {i}"),
                2000 + 500 * i as usize,
                date,
            ),
            flags: vec![],
            internaldate: date,
        });
    }
    // Exact duplicates: the same bytes, flags and date twice, with and without Message-ID.
    let date = base + time::Duration::days(50);
    let dup = message(
        &mut rng,
        3000,
        Some("<dup@old.example>"),
        "duplicate",
        3000,
        date,
    );
    let dup_noid = message(&mut rng, 3001, None, "duplicate without id", 1200, date);
    for _ in 0..2 {
        out.push(SeedMessage {
            folder: "INBOX".into(),
            bytes: dup.clone(),
            flags: vec!["\\Seen"],
            internaldate: date,
        });
        out.push(SeedMessage {
            folder: "Archive/Old".into(),
            bytes: dup_noid.clone(),
            flags: vec![],
            internaldate: date,
        });
    }
    // 8-bit header and malformed MIME.
    out.push(SeedMessage {
        folder: "INBOX".into(),
        bytes: "From: Jürgen Grüß <j@old.example>\r\nSubject: Grüße aus Köln – ünïcödé\r\nMessage-ID: <8bit@old.example>\r\n\r\nHallo\r\n".as_bytes().to_vec(),
        flags: vec!["\\Seen"],
        internaldate: base,
    });
    out.push(SeedMessage {
        folder: "INBOX".into(),
        bytes: b"From: broken@old.example\r\nSubject: malformed\r\nMessage-ID: <malformed@old.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n--XYZ\r\nContent-Type: text/plain\r\n\r\npart one without an end boundary\r\n--XY\r\n".to_vec(),
        flags: vec![],
        internaldate: base,
    });
    if let Some(size) = big {
        out.push(SeedMessage {
            folder: "INBOX".into(),
            bytes: message(
                &mut rng,
                9999,
                Some("<big@old.example>"),
                "big attachment",
                size,
                base,
            ),
            flags: vec!["\\Seen"],
            internaldate: base,
        });
    }
    out
}

/// `n` small messages (1–4 KB) spread over INBOX and two archive folders, for tests that need
/// many checkpoints (crash tests) or volume.
pub fn bulk_corpus(seed: u64, n: u64) -> Vec<SeedMessage> {
    let mut rng = Rng::new(seed);
    let base =
        OffsetDateTime::from_unix_timestamp(1_500_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let folders = ["INBOX", "Archive/Old", "Archive/Older"];
    (0..n)
        .map(|i| {
            let date = base + time::Duration::seconds(rng.below(5 * 365 * 86_400) as i64);
            let folder = folders[rng.below(folders.len() as u64) as usize];
            let id = (i % 17 != 0).then(|| format!("<bulk{i}.{seed}@old.example>"));
            let size = 1000 + rng.below(3000) as usize;
            SeedMessage {
                folder: folder.into(),
                bytes: message(
                    &mut rng,
                    10_000 + i,
                    id.as_deref(),
                    &format!("bulk {i}"),
                    size,
                    date,
                ),
                flags: FLAG_SETS[rng.below(FLAG_SETS.len() as u64) as usize].to_vec(),
                internaldate: date,
            }
        })
        .collect()
}

/// The benchmark mailbox: about 5,000 messages / 900 MB in 19 folders at `scale` 1.0 (mostly
/// 2–50 KB, 150 of 1–10 MB, a few of 25 MB; `BENCH_HUGE` sets how many of those).
pub fn bench_corpus(scale: f64) -> Vec<SeedMessage> {
    let mut rng = Rng::new(5000);
    let base = time::OffsetDateTime::from_unix_timestamp(1_550_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let folders: Vec<String> = [
        "INBOX",
        "Sent",
        "Drafts",
        "Archive",
        "Archive/2019",
        "Archive/2020",
        "Archive/2021",
        "Archive/2022",
        "Archive/2023",
        "Projects",
        "Projects/Alpha",
        "Projects/Beta",
        "Projects/Gamma",
        "Customers",
        "Customers/Acme",
        "Customers/Globex",
        "Newsletters",
        "Receipts",
        "Travel",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let small = (4_850.0 * scale).round() as u64;
    let medium = (150.0 * scale).round() as u64;
    let huge = match std::env::var("BENCH_HUGE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => n,
        None => (3.0 * scale)
            .round()
            .max(if scale > 0.0 { 1.0 } else { 0.0 }) as u64,
    };
    let mut out = Vec::new();
    let mut n = 0u64;
    let mut push = |rng: &mut Rng, size: usize, out: &mut Vec<SeedMessage>| {
        n += 1;
        let folder = folders[rng.below(folders.len() as u64) as usize].clone();
        let date = base + time::Duration::seconds(rng.below(6 * 365 * 86_400) as i64);
        let flags = if rng.below(3) == 0 {
            vec![]
        } else {
            vec!["\\Seen"]
        };
        out.push(SeedMessage {
            bytes: message(
                rng,
                n,
                Some(&format!("<bench{n}@old.example>")),
                &format!("bench {n}"),
                size,
                date,
            ),
            folder,
            flags,
            internaldate: date,
        });
    };
    for _ in 0..small {
        let size = 2_000 + rng.below(48_000) as usize;
        push(&mut rng, size, &mut out);
    }
    for _ in 0..medium {
        let size = 1_000_000 + rng.below(9_000_000) as usize;
        push(&mut rng, size, &mut out);
    }
    for _ in 0..huge {
        push(&mut rng, 25 * 1024 * 1024, &mut out);
    }
    out
}
