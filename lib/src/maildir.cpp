// Maildir delivery and Maildir++ quotas. See maildir.hpp.
#include "qvmail/maildir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "qvmail/text.hpp"

namespace qv {

namespace fs = std::filesystem;

bool MaildirError::quota_exceeded() const noexcept {
    return errnum_ == EDQUOT;
}

bool MaildirError::disk_full() const noexcept {
    return errnum_ == ENOSPC;
}

namespace {

constexpr std::size_t kMaildirsizeLimit = 5120;  // Maildir++: recalculate a file this big
constexpr std::size_t kHeaderLimit = 64 * 1024;  // has_delivered_to reads no more header than this
constexpr int kNameTries = 20;                   // fresh unique names tried before giving up

MaildirError sys_fail(Exit code, std::string_view what, const fs::path& path, int e) {
    std::string m(what);
    m += " ";
    m += path.string();
    m += ": ";
    m += std::strerror(e);
    return MaildirError(code, m, e);
}

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
}

// A closed-on-scope-exit descriptor.
class Fd {
public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const noexcept { return fd_; }
    int release() noexcept {
        int f = fd_;
        fd_ = -1;
        return f;
    }

private:
    int fd_;
};

// ---- unique names ----

// The host part of a unique name: gethostname with '/' and ':' escaped, as the Maildir specification
// asks. Read once per process.
const std::string& name_host() {
    static const std::string host = [] {
        char buf[256] = {};
        std::string h;
        if (::gethostname(buf, sizeof buf - 1) == 0) h = buf;
        if (h.empty()) h = "localhost";
        std::string out;
        for (char c : h) {
            if (c == '/')
                out += "\\057";
            else if (c == ':')
                out += "\\072";
            else
                out += c;
        }
        return out;
    }();
    return host;
}

std::atomic<std::uint64_t> g_deliveries{0};

// <sec>.M<usec>P<pid>Q<n>.<host>
std::string unique_name() {
    struct timeval tv {};
    ::gettimeofday(&tv, nullptr);
    std::uint64_t n = g_deliveries.fetch_add(1, std::memory_order_relaxed) + 1;
    std::string s = std::to_string(static_cast<long long>(tv.tv_sec));
    s += ".M";
    s += std::to_string(static_cast<long long>(tv.tv_usec));
    s += "P";
    s += std::to_string(static_cast<long long>(::getpid()));
    s += "Q";
    s += std::to_string(n);
    s += ".";
    s += name_host();
    return s;
}

std::string with_size(const std::string& base, std::uint64_t size) {
    return base + ",S=" + std::to_string(size);
}

// The S=<n> size of a Maildir++ file name (before the ":2," flags), if it has one.
std::optional<std::uint64_t> size_in_name(std::string_view name) {
    std::string_view base = name.substr(0, name.find(':'));
    std::size_t at = base.rfind(",S=");
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view digits = base.substr(at + 3);
    std::size_t end = 0;
    while (end < digits.size() && digits[end] >= '0' && digits[end] <= '9') ++end;
    if (end == 0 || (end < digits.size() && digits[end] != ',')) return std::nullopt;
    std::uint64_t v = 0;
    auto r = std::from_chars(digits.data(), digits.data() + end, v);
    if (r.ec != std::errc()) return std::nullopt;
    return v;
}

// ---- small file helpers ----

void write_all(int fd, std::string_view data, const fs::path& path) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            throw sys_fail(Exit::ioerr, "cannot write", path, e);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

void fsync_dir(const fs::path& dir) {
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.get() < 0) {
        int e = errno;
        throw sys_fail(Exit::ioerr, "cannot open", dir, e);
    }
    if (::fsync(d.get()) != 0) {
        int e = errno;
        throw sys_fail(Exit::ioerr, "cannot sync", dir, e);
    }
}

// Whether a copy call failed because this kind of copy is not possible here (try the next way), rather
// than because reading or writing failed.
bool copy_unsupported(int e) {
    return e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == ENOTSUP || e == EBADF || e == ESPIPE ||
           e == EPERM || e == ETXTBSY;
}

// Copies `in` from `offset` (or from where it is, for a pipe) to its end onto `out`; returns the bytes
// copied.
std::uint64_t copy_rest(int in, off_t offset, int out, const fs::path& out_path) {
    std::uint64_t total = 0;
    off_t off = offset;
    constexpr std::size_t chunk = std::size_t(1) << 30;
    auto copy_error = [&](int e) { return sys_fail(Exit::ioerr, "cannot copy the message into", out_path, e); };
    // One way of the kernel's to copy, until the end (true) or until it says it cannot (false).
    auto kernel_copy = [&](const auto& step) {
        for (;;) {
            ssize_t n = step();
            if (n > 0) {
                total += static_cast<std::uint64_t>(n);
                continue;
            }
            if (n == 0) return true;
            if (errno == EINTR) continue;
            if (copy_unsupported(errno)) return false;
            throw copy_error(errno);
        }
    };
    // Same file system (or a kernel that copies across them): the kernel copies, maybe sharing extents.
    if (kernel_copy([&] { return ::copy_file_range(in, &off, out, nullptr, chunk, 0); })) return total;
    // Any regular file to any file.
    if (kernel_copy([&] { return ::sendfile(out, in, &off, chunk); })) return total;

    // Anything else: pread (read for a pipe) and write.
    std::vector<char> buf(64 * 1024);
    bool seekable = true;
    for (;;) {
        ssize_t n = seekable ? ::pread(in, buf.data(), buf.size(), off) : ::read(in, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ESPIPE && seekable) {
                seekable = false;
                continue;
            }
            throw copy_error(errno);
        }
        if (n == 0) break;
        write_all(out, std::string_view(buf.data(), static_cast<std::size_t>(n)), out_path);
        total += static_cast<std::uint64_t>(n);
        off += n;
    }
    return total;
}

// ---- counting messages ----

// Adds the messages of one directory (new/ or cur/) to `use`. A missing directory adds nothing.
void count_dir(const fs::path& dir, MaildirUsage& use) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) return;
        throw sys_fail(e == EIO ? Exit::ioerr : Exit::noinput, "cannot read", dir, e);
    }
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    for (;;) {
        errno = 0;
        struct dirent* de = ::readdir(d);
        if (!de) {
            if (errno != 0) {
                int e = errno;
                throw sys_fail(Exit::ioerr, "cannot read", dir, e);
            }
            break;
        }
        std::string_view name = de->d_name;
        if (name.empty() || name.front() == '.') continue;
        if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN) continue;
        if (auto s = size_in_name(name)) {
            use.bytes += *s;
            ++use.count;
            continue;
        }
        struct stat st {};
        if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            int e = errno;
            if (e == ENOENT) continue;  // removed while counting
            throw sys_fail(Exit::ioerr, "cannot look up", dir / de->d_name, e);
        }
        if (!S_ISREG(st.st_mode)) continue;
        use.bytes += static_cast<std::uint64_t>(st.st_size);
        ++use.count;
    }
}

// The messages of a Maildir and of its folders.
MaildirUsage count_messages(const fs::path& maildir) {
    MaildirUsage use;
    count_dir(maildir / "new", use);
    count_dir(maildir / "cur", use);
    DIR* d = ::opendir(maildir.c_str());
    if (!d) {
        int e = errno;
        throw sys_fail(e == EIO ? Exit::ioerr : Exit::noinput, "cannot read", maildir, e);
    }
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    std::vector<std::string> folders;
    for (;;) {
        errno = 0;
        struct dirent* de = ::readdir(d);
        if (!de) {
            if (errno != 0) {
                int e = errno;
                throw sys_fail(Exit::ioerr, "cannot read", maildir, e);
            }
            break;
        }
        std::string_view name = de->d_name;
        if (name.size() < 2 || name.front() != '.' || name == "..") continue;
        if (de->d_type == DT_DIR) {
            folders.emplace_back(name);
        } else if (de->d_type == DT_UNKNOWN) {
            struct stat st {};
            if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                folders.emplace_back(name);
        }
    }
    for (const auto& f : folders) {
        count_dir(maildir / f / "new", use);
        count_dir(maildir / f / "cur", use);
    }
    return use;
}

// ---- reading maildirsize ----

bool parse_int(std::string_view s, std::int64_t& v) {
    if (s.empty()) return false;
    const char* b = s.data();
    if (*b == '+') ++b;
    auto r = std::from_chars(b, s.data() + s.size(), v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

struct SizeFile {
    std::string quota_line;
    MaildirUsage usage;
};

// maildirsize's quota line and sums; nullopt when the file is missing, unreadable, too big or
// malformed (each of which means: count again).
std::optional<SizeFile> read_maildirsize(const fs::path& file) {
    Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return std::nullopt;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    if (static_cast<std::uint64_t>(st.st_size) >= kMaildirsizeLimit) return std::nullopt;
    std::string text;
    char buf[kMaildirsizeLimit];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return std::nullopt;
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() >= kMaildirsizeLimit) return std::nullopt;  // grew while being read
    }
    std::size_t nl = text.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    SizeFile out;
    out.quota_line = std::string(trim(std::string_view(text).substr(0, nl)));
    std::int64_t bytes = 0, count = 0;
    std::string_view rest = std::string_view(text).substr(nl + 1);
    while (!rest.empty()) {
        std::size_t end = rest.find('\n');
        std::string_view line = trim(rest.substr(0, end));
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        if (line.empty()) continue;
        std::size_t sp = line.find_first_of(" \t");
        if (sp == std::string_view::npos) return std::nullopt;
        std::int64_t b = 0, c = 0;
        if (!parse_int(line.substr(0, sp), b) || !parse_int(trim(line.substr(sp)), c)) return std::nullopt;
        bytes += b;
        count += c;
    }
    if (bytes < 0 || count < 0) return std::nullopt;  // more removed than was ever counted: count again
    out.usage.bytes = static_cast<std::uint64_t>(bytes);
    out.usage.count = static_cast<std::uint64_t>(count);
    return out;
}

// The owner to give new files and directories under `maildir`: its own, when we are root and it is
// not ours.
std::optional<Owner> owner_for(const struct stat& maildir_st) {
    if (::geteuid() != 0) return std::nullopt;
    if (maildir_st.st_uid == 0 && maildir_st.st_gid == 0) return std::nullopt;
    return Owner{maildir_st.st_uid, maildir_st.st_gid};
}

// Creates a directory (an existing one is fine); returns whether it was made.
bool make_dir(const fs::path& p, mode_t mode, const std::optional<Owner>& owner) {
    if (::mkdir(p.c_str(), mode) != 0) {
        int e = errno;
        if (e == EEXIST) return false;
        throw sys_fail(exit_for_create_errno(e), "cannot create", p, e);
    }
    ::chmod(p.c_str(), mode);  // mkdir's mode went through the umask
    if (owner) give_to(-1, p, *owner);
    return true;
}

}  // namespace

// ---- quota ----

std::optional<Quota> try_parse_quota(std::string_view text) {
    text = trim(text);
    if (equal_ignoring_case(text, "NOQUOTA")) return Quota{};
    if (text.empty()) return std::nullopt;
    Quota q;
    std::size_t comma = text.find(',');
    std::string_view parts[2] = {text.substr(0, comma),
                                 comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1)};
    int nparts = comma == std::string_view::npos ? 1 : 2;
    for (int i = 0; i < nparts; ++i) {
        std::string_view p = trim(parts[i]);
        if (p.empty()) return std::nullopt;
        char kind = i == 0 ? 'S' : 'C';
        char last = p.back();
        if (last == 'S' || last == 's' || last == 'C' || last == 'c') {
            kind = last == 'S' || last == 's' ? 'S' : 'C';
            p.remove_suffix(1);
        }
        if (p.empty()) return std::nullopt;
        std::uint64_t v = 0;
        auto r = std::from_chars(p.data(), p.data() + p.size(), v);
        if (r.ec != std::errc() || r.ptr != p.data() + p.size()) return std::nullopt;
        std::optional<std::uint64_t>& slot = kind == 'S' ? q.bytes : q.count;
        if (slot) return std::nullopt;  // "5S,6S"
        slot = v;
    }
    return q;
}

bool quota_unlimited(const Quota& q) noexcept {
    return (!q.bytes || *q.bytes == 0) && (!q.count || *q.count == 0);
}

std::string format_maildirsize_quota(const Quota& q) {
    std::string out;
    if (q.bytes && *q.bytes > 0) out = std::to_string(*q.bytes) + "S";
    if (q.count && *q.count > 0) {
        if (!out.empty()) out += ",";
        out += std::to_string(*q.count) + "C";
    }
    if (out.empty()) out = "0S";
    return out;
}

// ---- usage ----

MaildirUsage maildir_usage(const fs::path& maildir, const Quota& q, bool recalculate) {
    const fs::path file = maildir / "maildirsize";
    const std::string want = format_maildirsize_quota(q);
    if (!recalculate) {
        if (auto sf = read_maildirsize(file)) {
            auto theirs = try_parse_quota(sf->quota_line);
            if (theirs && format_maildirsize_quota(*theirs) == want) return sf->usage;
        }
    }
    MaildirUsage use = count_messages(maildir);
    struct stat fst {};
    if (quota_unlimited(q) && ::lstat(file.c_str(), &fst) != 0) return use;
    try {
        struct stat mst {};
        std::optional<Owner> owner;
        if (::stat(maildir.c_str(), &mst) == 0) owner = owner_for(mst);
        replace_file(file, want + "\n" + std::to_string(use.bytes) + " " + std::to_string(use.count) + "\n", 0644,
                     owner);
    } catch (const Error&) {
        // The file stays as it was; the count just made is right all the same.
    }
    return use;
}

std::optional<MaildirUsage> maildirsize_usage(const fs::path& maildir) {
    if (auto sf = read_maildirsize(maildir / "maildirsize")) return sf->usage;
    return std::nullopt;
}

void maildirsize_add(const fs::path& maildir, std::int64_t bytes, std::int64_t count) {
    const fs::path file = maildir / "maildirsize";
    Fd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    if (fd.get() < 0) {
        int e = errno;
        if (e == ENOENT) return;
        throw sys_fail(Exit::ioerr, "cannot open", file, e);
    }
    std::string line = std::to_string(bytes) + " " + std::to_string(count) + "\n";
    for (;;) {
        ssize_t n = ::write(fd.get(), line.data(), line.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            throw sys_fail(Exit::ioerr, "cannot write", file, e);
        }
        if (static_cast<std::size_t>(n) != line.size())
            throw MaildirError(Exit::ioerr, "short write to " + file.string(), EIO);
        break;
    }
    if (::close(fd.release()) != 0) {
        int e = errno;
        throw sys_fail(Exit::ioerr, "cannot close", file, e);
    }
}

bool fits_quota(const Quota& q, const MaildirUsage& usage, std::uint64_t size) noexcept {
    if (q.bytes && *q.bytes > 0 && (usage.bytes > *q.bytes || size > *q.bytes - usage.bytes)) return false;
    if (q.count && *q.count > 0 && usage.count >= *q.count) return false;
    return true;
}

// ---- Maildirs and folders ----

bool is_maildir(const fs::path& p) {
    for (const char* sub : {"tmp", "new", "cur"}) {
        fs::path d = p / sub;
        struct stat st {};
        if (::stat(d.c_str(), &st) != 0) {
            int e = errno;
            if (e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG) return false;
            throw sys_error(exit_for_read_errno(e), "cannot look up", d, e);
        }
        if (!S_ISDIR(st.st_mode)) return false;
    }
    return true;
}

fs::path maildir_folder(const fs::path& maildir, std::string_view folder, bool sync) {
    if (folder.empty() || folder == "." || equal_ignoring_case(folder, "INBOX")) return maildir;
    // IMAP's name for a folder under INBOX (Courier's "INBOX.Work") is the same folder
    std::string_view given = folder;
    if (given.size() > 6 && equal_ignoring_case(given.substr(0, 6), "INBOX.")) given.remove_prefix(6);
    std::string name(given);
    if (name.front() != '.') name.insert(name.begin(), '.');
    auto bad = [&](const std::string& why) {
        throw Error(Exit::dataerr, "invalid mail folder '" + printable(folder) + "': " + why);
    };
    if (name.size() > 255) bad("longer than 255 bytes");
    if (name.find('/') != std::string::npos) bad("'/' is not allowed");
    if (name.find('\0') != std::string::npos) bad("a NUL byte is not allowed");
    // ".A.B": every part between the dots has a name
    for (std::size_t i = 0; i < name.size(); ++i)
        if (name[i] == '.' && (i + 1 == name.size() || name[i + 1] == '.')) bad("a part of the name is empty");

    fs::path dir = maildir / name;
    if (is_maildir(dir)) return dir;

    struct stat mst {};
    if (::stat(maildir.c_str(), &mst) != 0) {
        int e = errno;
        throw sys_fail(exit_for_create_errno(e), "cannot look up", maildir, e);
    }
    mode_t mode = mst.st_mode & 07777;
    std::optional<Owner> owner = owner_for(mst);
    bool made_folder = make_dir(dir, mode, owner);
    // maildirfolder before tmp/new/cur: is_maildir (checked first above) is true only once all is there.
    fs::path marker = dir / "maildirfolder";
    {
        Fd m(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        if (m.get() < 0) {
            int e = errno;
            throw sys_fail(exit_for_create_errno(e), "cannot create", marker, e);
        }
        ::fchmod(m.get(), mode & 0666);
        if (owner) give_to(m.get(), marker, *owner);
    }
    for (const char* sub : {"tmp", "new", "cur"}) make_dir(dir / sub, mode, owner);
    if (sync) {
        fsync_dir(dir);
        if (made_folder) fsync_dir(maildir);
    }
    return dir;
}

// ---- delivery ----

MaildirFile maildir_write(const fs::path& dir, std::string_view head, int fd, off_t offset, bool sync,
                          const std::optional<Owner>& owner) {
    MaildirFile f;
    f.dir = dir;
    fs::path tmp_path;
    int o = -1;
    for (int tries = 0;; ++tries) {
        f.tmp_name = unique_name();
        tmp_path = dir / "tmp" / f.tmp_name;
        o = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (o >= 0) break;
        int e = errno;
        if (e == EINTR || (e == EEXIST && tries + 1 < kNameTries)) continue;
        throw sys_fail(exit_for_create_errno(e), "cannot create", tmp_path, e);
    }
    Fd out(o);
    try {
        if (owner) give_to(out.get(), tmp_path, *owner);
        write_all(out.get(), head, tmp_path);
        std::uint64_t size = head.size();
        if (fd >= 0) size += copy_rest(fd, offset, out.get(), tmp_path);
        if (sync && ::fsync(out.get()) != 0) {
            int e = errno;
            throw sys_fail(Exit::ioerr, "cannot sync", tmp_path, e);
        }
        struct stat st {};
        if (::fstat(out.get(), &st) != 0) {
            int e = errno;
            throw sys_fail(Exit::ioerr, "cannot look up", tmp_path, e);
        }
        if (::close(out.release()) != 0) {  // NFS reports late write errors here
            int e = errno;
            throw sys_fail(Exit::ioerr, "cannot close", tmp_path, e);
        }
        f.size = size;
        f.dev = st.st_dev;
        f.new_name = with_size(f.tmp_name, size);
    } catch (...) {
        ::unlink(tmp_path.c_str());
        throw;
    }
    return f;
}

fs::path maildir_publish(MaildirFile& f, bool sync) {
    const fs::path tmp_path = f.dir / "tmp" / f.tmp_name;
    const fs::path new_dir = f.dir / "new";
    if (f.new_name.empty()) f.new_name = with_size(f.tmp_name, f.size);
    bool linked = false;
    for (int tries = 0; !linked; ++tries) {
        fs::path new_path = new_dir / f.new_name;
        if (::link(tmp_path.c_str(), new_path.c_str()) == 0) {
            linked = true;
            break;
        }
        int e = errno;
        if (e == EEXIST) {
            // The same file already (a retried link over NFS)? Then it is delivered.
            struct stat a {};
            struct stat b {};
            if (::stat(tmp_path.c_str(), &a) == 0 && ::stat(new_path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
                a.st_ino == b.st_ino) {
                linked = true;
                break;
            }
            if (tries + 1 >= kNameTries) throw sys_fail(Exit::cantcreat, "cannot find a free name in", new_dir, e);
            f.new_name = with_size(unique_name(), f.size);
            continue;
        }
        if (e == EPERM || e == EOPNOTSUPP || e == ENOTSUP || e == EMLINK) {
            // No hard links here (or too many): move the file, still never over an existing name.
            for (;;) {
                new_path = new_dir / f.new_name;
                if (::renameat2(AT_FDCWD, tmp_path.c_str(), AT_FDCWD, new_path.c_str(), RENAME_NOREPLACE) == 0) break;
                int e2 = errno;
                if (e2 == EEXIST && ++tries < kNameTries) {
                    f.new_name = with_size(unique_name(), f.size);
                    continue;
                }
                throw sys_fail(exit_for_create_errno(e2 == EINVAL ? e : e2), "cannot move " + tmp_path.string() + " to", new_path,
                               e2 == EINVAL ? e : e2);
            }
            if (sync) fsync_dir(new_dir);
            return new_dir / f.new_name;
        }
        throw sys_fail(exit_for_create_errno(e), "cannot link " + tmp_path.string() + " to", new_path, e);
    }
    // Delivered: a tmp/ name left behind (unlink failing) does no harm and is cleaned up with tmp/.
    ::unlink(tmp_path.c_str());
    if (sync) fsync_dir(new_dir);
    return new_dir / f.new_name;
}

void maildir_discard(const MaildirFile& f) noexcept {
    if (f.tmp_name.empty()) return;
    try {
        fs::path p = f.dir / "tmp" / f.tmp_name;
        ::unlink(p.c_str());
    } catch (...) {
    }
}

// ---- loop check ----

bool has_delivered_to(int fd, off_t offset, std::string_view address) {
    // Read the header: until an empty line starts, or kHeaderLimit bytes.
    std::string buf;
    bool eof = false;
    std::size_t scanned = 0;  // bytes of buf searched for the end of the header
    for (;;) {
        std::size_t want = std::min<std::size_t>(8192, kHeaderLimit - buf.size());
        if (want == 0) break;
        std::size_t old = buf.size();
        buf.resize(old + want);
        ssize_t n = ::pread(fd, buf.data() + old, want, offset + static_cast<off_t>(old));
        if (n < 0) {
            buf.resize(old);
            if (errno == EINTR) continue;
            int e = errno;
            throw MaildirError(Exit::ioerr, std::string("cannot read the message: ") + std::strerror(e), e);
        }
        buf.resize(old + static_cast<std::size_t>(n));
        if (n == 0) {
            eof = true;
            break;
        }
        // An empty line: "\n\n" or "\n\r\n", or the message starting with one.
        std::size_t from = scanned > 2 ? scanned - 2 : 0;
        std::string_view v(buf);
        if (v.substr(0, 1) == "\n" || v.substr(0, 2) == "\r\n" || v.find("\n\n", from) != std::string_view::npos ||
            v.find("\n\r\n", from) != std::string_view::npos)
            break;
        scanned = buf.size();
    }

    const std::string_view want_addr = trim(address);
    std::string name, value;
    bool in_field = false;
    auto matches = [&] {
        return in_field && equal_ignoring_case(trim(name), "Delivered-To") &&
               equal_ignoring_case(trim(value), want_addr);
    };
    std::string_view rest(buf);
    while (!rest.empty()) {
        std::size_t nl = rest.find('\n');
        if (nl == std::string_view::npos && !eof) break;  // a line cut off by the limit: not read whole
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;  // end of the header
        if (line.front() == ' ' || line.front() == '\t') {
            if (!in_field) break;  // a continuation with nothing to continue: not a header
            value += line;
            continue;
        }
        if (matches()) return true;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            in_field = false;
            break;  // neither a field nor a continuation: the body starts here
        }
        name.assign(line.substr(0, colon));
        value.assign(line.substr(colon + 1));
        in_field = true;
    }
    return matches();
}

}  // namespace qv
