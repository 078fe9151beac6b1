#include "qvmail/cdb.hpp"

#include <cdb.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "qvmail/error.hpp"

namespace qv {

std::uint32_t cdb_hash(std::string_view key) noexcept {
    std::uint32_t h = 5381;
    for (unsigned char c : key) h = ((h << 5) + h) ^ c;
    return h;
}

void CdbSink::count(std::string_view key, std::string_view value) {
    data_bytes_ += 8 + key.size() + value.size();
    ++records_;
    if (bytes() > 0xffffffffULL)
        throw Error(Exit::dataerr, "the database would exceed the 4 GiB limit of the cdb format");
}

// ---------------------------------------------------------------------------------------------

CdbWriter::CdbWriter(int fd, std::filesystem::path name) : make_(new struct cdb_make), name_(std::move(name)) {
    if (::cdb_make_start(make_, fd) != 0) {
        int e = errno;
        delete make_;
        throw sys_error(Exit::ioerr, "cannot start writing", name_, e);
    }
}

CdbWriter::~CdbWriter() {
    // An unfinished writer (an error unwound past it) still owns tinycdb's record lists: finishing
    // frees them. What it writes goes to a temporary file that is being discarded anyway.
    if (!finished_) ::cdb_make_finish(make_);
    delete make_;
}

void CdbWriter::add(std::string_view key, std::string_view value) {
    count(key, value);
    if (::cdb_make_add(make_, key.data(), static_cast<unsigned>(key.size()), value.data(),
                       static_cast<unsigned>(value.size())) != 0) {
        int e = errno;
        throw sys_error(Exit::ioerr, "cannot write", name_, e);
    }
}

void CdbWriter::finish() {
    finished_ = true;  // cdb_make_finish frees the record lists whatever it returns
    if (::cdb_make_finish(make_) != 0) {
        int e = errno;
        throw sys_error(Exit::ioerr, "cannot write", name_, e);
    }
}

// ---------------------------------------------------------------------------------------------

namespace {

bool not_older(const struct stat& c, const struct stat& t) {
    if (c.st_mtim.tv_sec != t.st_mtim.tv_sec) return c.st_mtim.tv_sec > t.st_mtim.tv_sec;
    return c.st_mtim.tv_nsec >= t.st_mtim.tv_nsec;
}

}  // namespace

bool cdb_is_current(const std::filesystem::path& cdb, const std::filesystem::path& source) {
    struct stat c {
    }, t{};
    if (::stat(cdb.c_str(), &c) != 0 || ::stat(source.c_str(), &t) != 0) return false;
    return not_older(c, t);
}

std::shared_ptr<const CdbReader> current_cdb(const std::filesystem::path& cdb, const std::filesystem::path& source) {
    struct stat c {
    }, t{};
    if (::stat(cdb.c_str(), &c) != 0 || ::stat(source.c_str(), &t) != 0 || !not_older(c, t)) return nullptr;
    struct Open {
        struct stat st;
        std::shared_ptr<const CdbReader> reader;
    };
    thread_local std::map<std::string, Open> open;  // a cdb's reader is not for two threads at once
    auto same = [&](const struct stat& o) {
        return o.st_dev == c.st_dev && o.st_ino == c.st_ino && o.st_size == c.st_size &&
               o.st_mtim.tv_sec == c.st_mtim.tv_sec && o.st_mtim.tv_nsec == c.st_mtim.tv_nsec &&
               o.st_ctim.tv_sec == c.st_ctim.tv_sec && o.st_ctim.tv_nsec == c.st_ctim.tv_nsec;
    };
    if (auto it = open.find(cdb.native()); it != open.end() && same(it->second.st)) return it->second.reader;
    if (open.size() >= 32) open.clear();  // a few domains' files at a time, not every domain's
    // (replaced since the stat: then the next call opens it again)
    auto reader = std::make_shared<const CdbReader>(cdb);
    open[cdb.native()] = Open{c, reader};
    return reader;
}

CdbReader::CdbReader(const std::filesystem::path& path) : path_(path), db_(new struct cdb) {
    std::memset(db_, 0, sizeof *db_);
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        int e = errno;
        delete db_;
        throw sys_error(exit_for_read_errno(e), "cannot open", path, e);
    }
    if (::cdb_init(db_, fd_) != 0) {
        int e = errno;
        ::close(fd_);
        delete db_;
        if (e == EPROTO)
            throw Error(Exit::dataerr, path.string() + ": not a cdb file (shorter than its 2048-byte header)");
        throw sys_error(Exit::ioerr, "cannot map", path, e);
    }
    // Every non-empty hash table must lie after the data and inside the file: this catches
    // truncated files before any lookup.
    std::uint64_t fsize = db_->cdb_fsize, dend = u32(0);
    bool ok = dend >= 2048 && dend <= fsize;
    for (unsigned t = 0; ok && t < 256; ++t) {
        std::uint64_t tpos = u32(t * 8), tlen = u32(t * 8 + 4);
        if (tlen != 0 && (tpos < dend || tpos > fsize || tlen > (fsize - tpos) / 8)) ok = false;
    }
    if (!ok) {
        ::cdb_free(db_);
        ::close(fd_);
        delete db_;
        throw Error(Exit::dataerr, path.string() + ": corrupt cdb: a hash table lies outside the file (truncated?)");
    }
}

CdbReader::~CdbReader() {
    ::cdb_free(db_);
    ::close(fd_);
    delete db_;
}

void CdbReader::corrupt(const std::string& what) const {
    throw Error(Exit::dataerr, path_.string() + ": corrupt cdb: " + what);
}

std::uint32_t CdbReader::u32(std::uint64_t pos) const noexcept {
    const unsigned char* p = db_->cdb_mem + pos;
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

std::uint64_t CdbReader::size() const noexcept {
    return db_->cdb_fsize;
}

std::uint64_t CdbReader::header_records() const noexcept {
    std::uint64_t slots = 0;
    for (unsigned t = 0; t < 256; ++t) slots += u32(t * 8 + 4);
    return slots / 2;
}

std::optional<std::string_view> CdbReader::find(std::string_view key) const {
    int r = ::cdb_find(db_, key.data(), static_cast<unsigned>(key.size()));
    if (r < 0) corrupt("lookup ran outside the file");
    if (r == 0) return std::nullopt;
    return std::string_view(reinterpret_cast<const char*>(db_->cdb_mem) + cdb_datapos(db_), cdb_datalen(db_));
}

std::vector<std::string_view> CdbReader::find_all(std::string_view key) const {
    std::vector<std::string_view> out;
    struct cdb_find f;
    int r = ::cdb_findinit(&f, db_, key.data(), static_cast<unsigned>(key.size()));
    if (r < 0) corrupt("hash table outside the file");
    while (r > 0 && (r = ::cdb_findnext(&f)) > 0)
        out.emplace_back(reinterpret_cast<const char*>(db_->cdb_mem) + cdb_datapos(db_), cdb_datalen(db_));
    if (r < 0) corrupt("record outside the file");
    return out;
}

void CdbReader::for_each(const std::function<void(std::string_view, std::string_view)>& fn) const {
    // Records run from 2048 up to the first hash table, which is table 0's position.
    std::uint64_t fsize = db_->cdb_fsize;
    std::uint64_t end = u32(0);
    if (end < 2048 || end > fsize) corrupt("the first hash table lies outside the file");
    std::uint64_t pos = 2048;
    const char* mem = reinterpret_cast<const char*>(db_->cdb_mem);
    while (pos < end) {
        if (end - pos < 8) corrupt("truncated record header at offset " + std::to_string(pos));
        std::uint64_t klen = u32(pos), vlen = u32(pos + 4);
        if (klen + vlen > end - pos - 8) corrupt("record at offset " + std::to_string(pos) + " runs past the data");
        fn(std::string_view(mem + pos + 8, klen), std::string_view(mem + pos + 8 + klen, vlen));
        pos += 8 + klen + vlen;
    }
}

void CdbReader::verify() const {
    std::uint64_t fsize = db_->cdb_fsize;
    std::uint64_t dend = u32(0);
    if (dend < 2048 || dend > fsize) corrupt("the first hash table lies outside the file");
    // Records must tile [2048, dend) exactly; remember where each one starts.
    const char* mem = reinterpret_cast<const char*>(db_->cdb_mem);
    std::vector<std::uint64_t> starts;
    for_each([&](std::string_view k, std::string_view) {
        starts.push_back(static_cast<std::uint64_t>(k.data() - mem) - 8);
    });
    std::uint64_t used_slots = 0;
    for (unsigned t = 0; t < 256; ++t) {
        std::uint64_t tpos = u32(t * 8), tlen = u32(t * 8 + 4);
        if (tlen == 0) continue;  // readers never look at an empty table's position
        if (tpos < dend || tpos > fsize || tlen > (fsize - tpos) / 8)
            corrupt("hash table " + std::to_string(t) + " lies outside the file");
        for (std::uint64_t s = 0; s < tlen; ++s) {
            std::uint64_t h = u32(tpos + s * 8), rpos = u32(tpos + s * 8 + 4);
            if (rpos == 0) continue;
            ++used_slots;
            auto it = std::lower_bound(starts.begin(), starts.end(), rpos);
            if (it == starts.end() || *it != rpos)
                corrupt("hash table " + std::to_string(t) + " points at offset " + std::to_string(rpos) +
                        ", where no record starts");
            std::string_view key(mem + rpos + 8, u32(rpos));
            if (cdb_hash(key) != h || (h & 255) != t)
                corrupt("hash table " + std::to_string(t) + " holds a slot that does not match its record");
        }
    }
    // Writers may leave records unindexed (tinycdb's replace mode), never index more than exist.
    if (used_slots > starts.size()) corrupt("more hash slots than records");
}

}  // namespace qv
