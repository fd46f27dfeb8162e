//! The HTTP response stream the `http` bench and the `rt_count` example
//! run on: built once, deterministic; `csv_doc.rs` of aa-runtime's benches
//! cuts it into packets. Included with `#[path]`.

pub const MESSAGES: usize = 2000;
pub const MAX_BODY: usize = 2000;
pub const HEADERS: usize = 7;
pub const ISN: u32 = 0x1234_5678;

/// The stream, and the sum of the body lengths.
pub fn document() -> (Vec<u8>, u64) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const STATUS: &[&str] = &[
        "200 OK",
        "200 OK",
        "200 OK",
        "200 OK",
        "201 Created",
        "404 Not Found",
        "500 Internal Server Error",
        "503 Service Unavailable",
    ];
    const TYPES: &[&str] = &[
        "text/html; charset=utf-8",
        "application/json",
        "text/plain",
        "image/png",
    ];
    const CACHE: &[&str] = &[
        "no-cache",
        "max-age=3600",
        "private, max-age=0, must-revalidate",
        "public, max-age=86400",
    ];
    const DAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    let mut out = Vec::new();
    let mut body_total = 0u64;
    for i in 0..MESSAGES {
        let r = next();
        let body_len = (r % (MAX_BODY as u64 + 1)) as usize;
        let r2 = next();
        let s = (r2 >> 8) as usize;
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {}\r\n\
                 Server: nginx/1.25.{}\r\n\
                 Date: {}, {:02} Nov 2024 {:02}:{:02}:{:02} GMT\r\n\
                 Content-Type: {}\r\n\
                 Content-Length: {}\r\n\
                 Cache-Control: {}\r\n\
                 ETag: \"{:016x}\"\r\n\
                 Connection: keep-alive\r\n\
                 \r\n",
                STATUS[s % STATUS.len()],
                s % 10,
                DAYS[(s >> 4) % DAYS.len()],
                1 + (s >> 8) % 28,
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60,
                TYPES[(s >> 12) % TYPES.len()],
                body_len,
                CACHE[(s >> 16) % CACHE.len()],
                r2,
            )
            .as_bytes(),
        );
        let mut y = r;
        out.extend((0..body_len).map(|_| {
            y = y.rotate_left(5).wrapping_add(0x2545_f491_4f6c_dd1d);
            ALNUM[(y >> 58) as usize % ALNUM.len()]
        }));
        body_total += body_len as u64;
    }
    (out, body_total)
}
