// Typed errors carrying a sysexits exit code. Library modules throw these; commands print them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace qv {

// sysexits(3) codes used by the admin commands (DESIGN.md, "Command conventions").
enum class Exit : int {
    ok = 0,
    missing = 6,       // the thing to remove does not exist (as userdel(8))
    exists = 9,        // the thing to add already exists (as useradd(8) and groupadd(8))
    usage = 64,        // EX_USAGE: bad command line
    dataerr = 65,      // EX_DATAERR: bad input data (a rules line, an address)
    noinput = 66,      // EX_NOINPUT: an input file is missing or unreadable
    nouser = 67,       // EX_NOUSER
    nohost = 68,       // EX_NOHOST: no such domain
    unavailable = 69,  // EX_UNAVAILABLE: a service (database) is down
    software = 70,     // EX_SOFTWARE: internal error
    cantcreat = 73,    // EX_CANTCREAT: cannot create an output file
    ioerr = 74,        // EX_IOERR: write or sync failed
    tempfail = 75,     // EX_TEMPFAIL: try again later (lock held)
    noperm = 77,       // EX_NOPERM
    config = 78,       // EX_CONFIG: configuration error
};

class Error : public std::runtime_error {
public:
    Error(Exit code, const std::string& message) : std::runtime_error(message), code_(code) {}
    Exit code() const noexcept { return code_; }

private:
    Exit code_;
};

// A bad line in an input file: names the file, the line number and the offending text.
class ParseError : public Error {
public:
    ParseError(std::filesystem::path file, std::uint64_t line, std::string reason, std::string text);
    const std::filesystem::path& file() const noexcept { return file_; }
    std::uint64_t line() const noexcept { return line_; }
    const std::string& reason() const noexcept { return reason_; }
    const std::string& text() const noexcept { return text_; }

private:
    std::filesystem::path file_;
    std::uint64_t line_;
    std::string reason_;
    std::string text_;
};

// Error for a failed system call on `path`: "<what> <path>: <strerror(errnum)>".
Error sys_error(Exit code, std::string_view what, const std::filesystem::path& path, int errnum);

// Exit code for a failure to open or read an input file.
Exit exit_for_read_errno(int errnum) noexcept;
// Exit code for a failure to create a file or directory: a full disk is an I/O matter (74), the rest (no
// such directory, no permission) one of creating (73).
Exit exit_for_create_errno(int errnum) noexcept;

// Whether `path` exists (following symbolic links): false when it does not (ENOENT, or ENOTDIR on the
// way), or cannot (ENAMETOOLONG: a name longer than any file's, say one made from an address). Any
// other failure to look (a directory on the way that this user may not search, an I/O error) throws
// Error 66 or 74 naming the path and the reason: a reader must not take a file it cannot see for one
// that is not there.
bool path_exists(const std::filesystem::path& path);

// Printable form of arbitrary bytes for one-line messages: control bytes and bytes >= 0x7f
// become \n, \t, \r, \0 or \xNN, backslashes are doubled. With `keep_utf8`, characters of valid UTF-8
// text above U+009F stay as they are (for text shown to people, such as decoded header fields).
std::string printable(std::string_view bytes, bool keep_utf8 = false);

}  // namespace qv
