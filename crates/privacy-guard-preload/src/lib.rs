//! The network guard that tests inject with `LD_PRELOAD` (test support, never shipped).
//!
//! It interposes the libc entry points through which a dynamically linked process reaches the network:
//! `connect`, `sendto`, `sendmsg`, `sendmmsg` (destination addresses) and `getaddrinfo`, `gethostbyname`,
//! `gethostbyname2` (name resolution, which would query a DNS server). Loopback destinations
//! (`127.0.0.0/8`, `::1`, `::ffff:127.0.0.0/104`), local families (`AF_UNIX`, `AF_NETLINK`, `AF_UNSPEC`),
//! numeric addresses and `localhost` names pass through to the real libc function (found with
//! `dlsym(RTLD_NEXT, ..)`). Anything else is refused with `EACCES` (`EAI_FAIL` for lookups) **before the
//! kernel sees it**, reported on stderr and appended to the file named by `PRIVACY_GUARD_LOG`.
//!
//! Log format, one line per event, tab separated: `loaded <pid> - - <exe>` when the library is loaded into a
//! process (so a test can prove the guard was really active), `blocked <pid> <call> <target> <exe>` for a
//! refusal and `observed <pid> <call> <target> <exe>` when `PRIVACY_GUARD_MODE=observe` (a test explicitly
//! marked as needing the network) let the call through.
//!
//! Invariant: while this library is loaded, no non-loopback connect, send or name lookup made through libc
//! reaches the kernel unless `PRIVACY_GUARD_MODE=observe`, and every such attempt is logged. It cannot see raw
//! syscalls or statically linked programs; the `loaded` line lets tests detect the latter.
//!
//! Audited `unsafe` exception (see `xtask audit`, rule 6): FFI is the purpose of this crate. Every unsafe
//! block carries a `SAFETY:` comment; the address classification is safe code with unit tests.

use std::ffi::c_int;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Environment variable naming the log file.
pub const LOG_ENV: &str = "PRIVACY_GUARD_LOG";
/// Environment variable selecting the mode; `observe` lets calls through (and logs them).
pub const MODE_ENV: &str = "PRIVACY_GUARD_MODE";

const AF_UNSPEC: u16 = 0;
const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const AF_NETLINK: u16 = 16;
#[cfg_attr(test, allow(dead_code))]
const EACCES: c_int = 13;
#[cfg_attr(test, allow(dead_code))]
const EAI_FAIL: c_int = -4;
#[cfg_attr(test, allow(dead_code))]
const NO_RECOVERY: c_int = 3;

/// What the guard does with a destination.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Local: pass through to libc.
    Allow,
    /// Not local: refuse, naming the target.
    Deny(String),
}

/// Classifies a raw `struct sockaddr` (the bytes the caller passed, `addrlen` long).
pub fn classify_sockaddr(bytes: &[u8]) -> Verdict {
    // Shorter than a family field: the kernel rejects it with EINVAL; nothing can be sent.
    let Some(family) = bytes.get(..2) else {
        return Verdict::Allow;
    };
    let family = u16::from_ne_bytes([family[0], family[1]]);
    match family {
        AF_UNSPEC | AF_UNIX | AF_NETLINK => Verdict::Allow,
        AF_INET => match bytes.get(2..8) {
            Some(b) => {
                let port = u16::from_be_bytes([b[0], b[1]]);
                let ip = Ipv4Addr::new(b[2], b[3], b[4], b[5]);
                if ip.is_loopback() {
                    Verdict::Allow
                } else {
                    Verdict::Deny(format!("{ip}:{port}"))
                }
            }
            None => Verdict::Deny("truncated AF_INET address".into()),
        },
        AF_INET6 => match (bytes.get(2..4), bytes.get(8..24)) {
            (Some(p), Some(a)) => {
                let port = u16::from_be_bytes([p[0], p[1]]);
                let mut octets = [0u8; 16];
                octets.copy_from_slice(a);
                let ip = Ipv6Addr::from(octets);
                let loopback =
                    ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback());
                if loopback {
                    Verdict::Allow
                } else {
                    Verdict::Deny(format!("[{ip}]:{port}"))
                }
            }
            _ => Verdict::Deny("truncated AF_INET6 address".into()),
        },
        other => Verdict::Deny(format!("address family {other}")),
    }
}

/// Classifies a host name passed to a resolver function. Numeric addresses need no lookup (the
/// connection itself is checked later); `localhost` names resolve from `/etc/hosts`.
pub fn classify_host(name: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(name) else {
        return Verdict::Deny(format!("non-UTF-8 host name {name:?}"));
    };
    let host = text.trim_end_matches('.').to_ascii_lowercase();
    let numeric = host.parse::<IpAddr>().is_ok();
    let local = matches!(
        host.as_str(),
        "localhost" | "localhost.localdomain" | "ip6-localhost" | "ip6-loopback"
    ) || host.ends_with(".localhost");
    if numeric || local {
        Verdict::Allow
    } else {
        Verdict::Deny(format!("name lookup of {text:?}"))
    }
}

#[cfg_attr(test, allow(dead_code))]
fn observe_mode() -> bool {
    std::env::var_os(MODE_ENV).is_some_and(|m| m == "observe")
}

/// Appends one event to the log (and, unless it is the load marker, to stderr). Never panics.
#[cfg_attr(test, allow(dead_code))]
fn record(event: &str, call: &str, target: &str) {
    let pid = std::process::id();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into());
    if event != "loaded" {
        eprintln!("privacy-guard: {event} {call} to {target} (pid {pid}, {exe})");
    }
    let Some(path) = std::env::var_os(LOG_ENV) else {
        if event == "loaded" {
            eprintln!("privacy-guard: {LOG_ENV} is not set; refusals are only reported here");
        }
        return;
    };
    let line = format!("{event}\t{pid}\t{call}\t{target}\t{exe}\n");
    // One write on an O_APPEND descriptor: lines from concurrent processes do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(err) = written {
        eprintln!("privacy-guard: cannot write {}: {err}", path.display());
    }
}

/// Decides a call: `true` means pass it through to libc.
#[cfg_attr(test, allow(dead_code))]
fn permit(call: &str, verdict: Verdict) -> bool {
    match verdict {
        Verdict::Allow => true,
        Verdict::Deny(target) if observe_mode() => {
            record("observed", call, &target);
            true
        }
        Verdict::Deny(target) => {
            record("blocked", call, &target);
            false
        }
    }
}

#[cfg(not(test))]
mod interpose {
    //! The exported libc replacements. Not compiled into unit tests, so the test harness keeps the real libc.

    use super::*;
    use std::ffi::{CStr, c_char, c_void};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;

    unsafe extern "C" {
        fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
        fn __errno_location() -> *mut c_int;
        fn __h_errno_location() -> *mut c_int;
    }

    /// `struct msghdr` (glibc, LP64).
    #[repr(C)]
    pub struct MsgHdr {
        name: *const c_void,
        namelen: u32,
        iov: *mut c_void,
        iovlen: usize,
        control: *mut c_void,
        controllen: usize,
        flags: c_int,
    }

    /// `struct mmsghdr` (glibc).
    #[repr(C)]
    pub struct MMsgHdr {
        hdr: MsgHdr,
        len: u32,
    }

    /// The next definition of `name` after this library (normally libc's), cached in `slot`.
    fn next(name: &CStr, slot: &AtomicUsize) -> usize {
        let cached = slot.load(Ordering::Relaxed);
        if cached != 0 {
            return cached;
        }
        // SAFETY: `dlsym` accepts the RTLD_NEXT pseudo-handle and a NUL-terminated name.
        let found = unsafe { dlsym(RTLD_NEXT, name.as_ptr()) } as usize;
        if found == 0 {
            eprintln!("privacy-guard: dlsym(RTLD_NEXT, {name:?}) failed; aborting");
            std::process::abort();
        }
        slot.store(found, Ordering::Relaxed);
        found
    }

    fn fail_eacces() {
        // SAFETY: `__errno_location` returns this thread's errno slot, always valid.
        unsafe { *__errno_location() = EACCES };
    }

    /// # Safety
    /// `addr` is null or points to `len` readable bytes (the caller's contract for the libc function).
    unsafe fn sockaddr_verdict(addr: *const c_void, len: u32) -> Verdict {
        if addr.is_null() {
            return Verdict::Allow; // connected socket (send*) or EFAULT from the kernel (connect)
        }
        // SAFETY: guaranteed by this function's contract.
        let bytes = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), len as usize) };
        classify_sockaddr(bytes)
    }

    /// # Safety
    /// `name` is null or a NUL-terminated string.
    unsafe fn host_verdict(name: *const c_char) -> Verdict {
        if name.is_null() {
            return Verdict::Allow; // passive / local lookup
        }
        // SAFETY: guaranteed by this function's contract.
        classify_host(unsafe { CStr::from_ptr(name) }.to_bytes())
    }

    type ConnectFn = unsafe extern "C" fn(c_int, *const c_void, u32) -> c_int;
    type SendtoFn =
        unsafe extern "C" fn(c_int, *const c_void, usize, c_int, *const c_void, u32) -> isize;
    type SendmsgFn = unsafe extern "C" fn(c_int, *const MsgHdr, c_int) -> isize;
    type SendmmsgFn = unsafe extern "C" fn(c_int, *mut MMsgHdr, u32, c_int) -> c_int;
    type GetaddrinfoFn = unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        *const c_void,
        *mut *mut c_void,
    ) -> c_int;
    type GethostbynameFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;
    type Gethostbyname2Fn = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;

    static CONNECT: AtomicUsize = AtomicUsize::new(0);
    static SENDTO: AtomicUsize = AtomicUsize::new(0);
    static SENDMSG: AtomicUsize = AtomicUsize::new(0);
    static SENDMMSG: AtomicUsize = AtomicUsize::new(0);
    static GETADDRINFO: AtomicUsize = AtomicUsize::new(0);
    static GETHOSTBYNAME: AtomicUsize = AtomicUsize::new(0);
    static GETHOSTBYNAME2: AtomicUsize = AtomicUsize::new(0);

    /// Interposed `connect(2)`.
    ///
    /// # Safety
    /// Same contract as libc's `connect`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn connect(fd: c_int, addr: *const c_void, len: u32) -> c_int {
        // SAFETY: the caller passes libc's contract on to us.
        if !permit("connect", unsafe { sockaddr_verdict(addr, len) }) {
            fail_eacces();
            return -1;
        }
        // SAFETY: the symbol found under this name in libc has exactly this signature.
        let real: ConnectFn = unsafe { std::mem::transmute(next(c"connect", &CONNECT)) };
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { real(fd, addr, len) }
    }

    /// Interposed `sendto(2)`.
    ///
    /// # Safety
    /// Same contract as libc's `sendto`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn sendto(
        fd: c_int,
        buf: *const c_void,
        n: usize,
        flags: c_int,
        addr: *const c_void,
        len: u32,
    ) -> isize {
        // SAFETY: the caller passes libc's contract on to us.
        if !permit("sendto", unsafe { sockaddr_verdict(addr, len) }) {
            fail_eacces();
            return -1;
        }
        // SAFETY: the symbol found under this name in libc has exactly this signature.
        let real: SendtoFn = unsafe { std::mem::transmute(next(c"sendto", &SENDTO)) };
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { real(fd, buf, n, flags, addr, len) }
    }

    /// Interposed `sendmsg(2)`.
    ///
    /// # Safety
    /// Same contract as libc's `sendmsg`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize {
        if !msg.is_null() {
            // SAFETY: a non-null `msg` points to a valid msghdr (libc's contract).
            let (name, namelen) = unsafe { ((*msg).name, (*msg).namelen) };
            // SAFETY: msg_name is null or msg_namelen bytes long (libc's contract).
            if !permit("sendmsg", unsafe { sockaddr_verdict(name, namelen) }) {
                fail_eacces();
                return -1;
            }
        }
        // SAFETY: the symbol found under this name in libc has exactly this signature.
        let real: SendmsgFn = unsafe { std::mem::transmute(next(c"sendmsg", &SENDMSG)) };
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { real(fd, msg, flags) }
    }

    /// Interposed `sendmmsg(2)`.
    ///
    /// # Safety
    /// Same contract as libc's `sendmmsg`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn sendmmsg(
        fd: c_int,
        msgs: *mut MMsgHdr,
        vlen: u32,
        flags: c_int,
    ) -> c_int {
        if !msgs.is_null() {
            for i in 0..vlen as usize {
                // SAFETY: `msgs` points to `vlen` valid mmsghdr entries (libc's contract).
                let (name, namelen) = unsafe {
                    let hdr = &(*msgs.add(i)).hdr;
                    (hdr.name, hdr.namelen)
                };
                // SAFETY: msg_name is null or msg_namelen bytes long (libc's contract).
                if !permit("sendmmsg", unsafe { sockaddr_verdict(name, namelen) }) {
                    fail_eacces();
                    return -1;
                }
            }
        }
        // SAFETY: the symbol found under this name in libc has exactly this signature.
        let real: SendmmsgFn = unsafe { std::mem::transmute(next(c"sendmmsg", &SENDMMSG)) };
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { real(fd, msgs, vlen, flags) }
    }

    /// Interposed `getaddrinfo(3)`.
    ///
    /// # Safety
    /// Same contract as libc's `getaddrinfo`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn getaddrinfo(
        node: *const c_char,
        service: *const c_char,
        hints: *const c_void,
        res: *mut *mut c_void,
    ) -> c_int {
        // SAFETY: `node` is null or NUL-terminated (libc's contract).
        if !permit("getaddrinfo", unsafe { host_verdict(node) }) {
            return EAI_FAIL;
        }
        // SAFETY: the symbol found under this name in libc has exactly this signature.
        let real: GetaddrinfoFn =
            unsafe { std::mem::transmute(next(c"getaddrinfo", &GETADDRINFO)) };
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { real(node, service, hints, res) }
    }

    fn fail_h_errno() -> *mut c_void {
        // SAFETY: `__h_errno_location` returns this thread's h_errno slot, always valid.
        unsafe { *__h_errno_location() = NO_RECOVERY };
        std::ptr::null_mut()
    }

    /// Interposed `gethostbyname(3)`.
    ///
    /// # Safety
    /// Same contract as libc's `gethostbyname`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut c_void {
        // SAFETY: `name` is NUL-terminated (libc's contract).
        if !permit("gethostbyname", unsafe { host_verdict(name) }) {
            return fail_h_errno();
        }
        // SAFETY: the symbol found under this name in libc has exactly this signature.
        let real: GethostbynameFn =
            unsafe { std::mem::transmute(next(c"gethostbyname", &GETHOSTBYNAME)) };
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { real(name) }
    }

    /// Interposed `gethostbyname2(3)`.
    ///
    /// # Safety
    /// Same contract as libc's `gethostbyname2`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut c_void {
        // SAFETY: `name` is NUL-terminated (libc's contract).
        if !permit("gethostbyname2", unsafe { host_verdict(name) }) {
            return fail_h_errno();
        }
        // SAFETY: the symbol found under this name in libc has exactly this signature.
        let real: Gethostbyname2Fn =
            unsafe { std::mem::transmute(next(c"gethostbyname2", &GETHOSTBYNAME2)) };
        // SAFETY: forwarding the caller's arguments unchanged.
        unsafe { real(name, af) }
    }

    extern "C" fn on_load() {
        record("loaded", "-", "-");
    }

    /// Runs `on_load` when the dynamic loader maps this library into a process.
    #[used]
    #[unsafe(link_section = ".init_array")]
    static ON_LOAD: extern "C" fn() = on_load;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = AF_INET.to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&ip);
        b.extend_from_slice(&[0; 8]);
        b
    }

    fn v6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
        let mut b = AF_INET6.to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&ip.octets());
        b.extend_from_slice(&[0; 4]);
        b
    }

    #[test]
    fn loopback_and_local_families_pass() {
        assert_eq!(classify_sockaddr(&v4([127, 0, 0, 1], 80)), Verdict::Allow);
        assert_eq!(classify_sockaddr(&v4([127, 9, 8, 7], 1)), Verdict::Allow);
        assert_eq!(
            classify_sockaddr(&v6(Ipv6Addr::LOCALHOST, 80)),
            Verdict::Allow
        );
        let mapped = Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped();
        assert_eq!(classify_sockaddr(&v6(mapped, 80)), Verdict::Allow);
        for family in [AF_UNSPEC, AF_UNIX, AF_NETLINK] {
            assert_eq!(classify_sockaddr(&family.to_ne_bytes()), Verdict::Allow);
        }
    }

    #[test]
    fn everything_else_is_denied_and_named() {
        assert_eq!(
            classify_sockaddr(&v4([192, 0, 2, 1], 9)),
            Verdict::Deny("192.0.2.1:9".into())
        );
        assert_eq!(
            classify_sockaddr(&v4([0, 0, 0, 0], 80)),
            Verdict::Deny("0.0.0.0:80".into())
        );
        let doc: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            classify_sockaddr(&v6(doc, 443)),
            Verdict::Deny("[2001:db8::1]:443".into())
        );
        let mapped = Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped();
        assert!(matches!(
            classify_sockaddr(&v6(mapped, 1)),
            Verdict::Deny(_)
        ));
        assert!(matches!(
            classify_sockaddr(&v4([10, 0, 0, 1], 1)[..6]),
            Verdict::Deny(_)
        ));
        assert_eq!(
            classify_sockaddr(&17u16.to_ne_bytes()),
            Verdict::Deny("address family 17".into())
        );
    }

    #[test]
    fn host_names() {
        for ok in [
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "127.0.0.1",
            "::1",
            "192.0.2.1",
        ] {
            assert_eq!(classify_host(ok.as_bytes()), Verdict::Allow, "{ok}");
        }
        for bad in [
            "example.com",
            "localhost.example.com",
            "telemetry.invalid",
            "",
        ] {
            assert!(
                matches!(classify_host(bad.as_bytes()), Verdict::Deny(_)),
                "{bad}"
            );
        }
    }
}
