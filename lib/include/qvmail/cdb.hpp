// Constant databases (djb's cdb) over tinycdb. The writer produces files byte-identical to djb's
// cdbmake, tcprules and qmail-newmrh (records in input order, duplicate keys kept, first one wins on
// lookup). The reader refuses truncated or corrupt files with an error instead of reading past them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct cdb;
struct cdb_make;

namespace qv {

// What compiling a text source into a cdb found.
struct CompileWarning {
    std::uint64_t line;
    std::string message;
};

struct CompileStats {
    std::uint64_t lines = 0;    // lines read
    std::uint64_t entries = 0;  // lines that produced records (a range line produces several)
    std::vector<CompileWarning> warnings;
};

// djb's cdb hash (bytes taken unsigned).
std::uint32_t cdb_hash(std::string_view key) noexcept;

// Where compiled records go: a real writer, or a counter for --check and --dry-run.
class CdbSink {
public:
    virtual ~CdbSink() = default;
    virtual void add(std::string_view key, std::string_view value) = 0;
    std::uint64_t records() const noexcept { return records_; }
    // Size the finished file has (or will have): header, records and two hash slots per record.
    std::uint64_t bytes() const noexcept { return 2048 + data_bytes_ + 16 * records_; }

protected:
    // Accounts for one record; throws Error 65 when the file would pass the 4 GiB limit.
    void count(std::string_view key, std::string_view value);

private:
    std::uint64_t records_ = 0;
    std::uint64_t data_bytes_ = 0;
};

class CdbCounter final : public CdbSink {
public:
    void add(std::string_view key, std::string_view value) override { count(key, value); }
};

// Writes a cdb to an open descriptor (positioned at 0). `name` is used in error messages.
class CdbWriter final : public CdbSink {
public:
    CdbWriter(int fd, std::filesystem::path name);
    ~CdbWriter() override;
    CdbWriter(const CdbWriter&) = delete;
    CdbWriter& operator=(const CdbWriter&) = delete;

    void add(std::string_view key, std::string_view value) override;
    void finish();  // writes the hash tables and the header

private:
    struct cdb_make* make_;
    std::filesystem::path name_;
    bool finished_ = false;
};

// Whether `cdb` may stand for `source`: both exist and the cdb is not older than the source (the
// readers' fast path; a source changed after its cdb, as bulk adds leave it, is read instead).
bool cdb_is_current(const std::filesystem::path& cdb, const std::filesystem::path& source);

class CdbReader;
// `cdb` opened for lookups when it is current for `source` (as cdb_is_current), else null. The reader
// stays open for the calling thread, and serves its next calls while the file is the same one (device,
// inode, size and times): a resident program (qmail-send looks up users/cdb and vpasswd.cdb for every
// message) maps each file once, not once a lookup. Use it on this thread only. Throws as CdbReader.
std::shared_ptr<const CdbReader> current_cdb(const std::filesystem::path& cdb, const std::filesystem::path& source);

class CdbReader {
public:
    // Opens and maps a cdb. Throws Error 66 when it cannot be opened, 65 when it is not a cdb.
    explicit CdbReader(const std::filesystem::path& path);
    ~CdbReader();
    CdbReader(const CdbReader&) = delete;
    CdbReader& operator=(const CdbReader&) = delete;

    // The value of the first record with `key`. Throws Error 65 when the file is corrupt.
    std::optional<std::string_view> find(std::string_view key) const;
    // Every value stored under `key`, in insertion order.
    std::vector<std::string_view> find_all(std::string_view key) const;
    // Every record in file order. Throws Error 65 at the first record that does not fit the file.
    void for_each(const std::function<void(std::string_view key, std::string_view value)>& fn) const;
    // Checks the whole structure: header, every hash slot, every record. Throws Error 65.
    void verify() const;

    std::uint64_t size() const noexcept;
    // Number of records as the header declares it (half the hash slots); cheap.
    std::uint64_t header_records() const noexcept;
    const std::filesystem::path& path() const noexcept { return path_; }

private:
    [[noreturn]] void corrupt(const std::string& what) const;
    std::uint32_t u32(std::uint64_t pos) const noexcept;

    std::filesystem::path path_;
    int fd_ = -1;
    struct cdb* db_;
};

}  // namespace qv
