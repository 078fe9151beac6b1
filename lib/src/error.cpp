#include "qvmail/error.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "qvmail/text.hpp"

namespace qv {

namespace {
std::string parse_message(const std::filesystem::path& file, std::uint64_t line, const std::string& reason,
                          const std::string& text) {
    std::string m = file.string() + ":" + std::to_string(line) + ": " + reason;
    if (!text.empty() || line != 0) m += ": " + printable(text);
    return m;
}
}  // namespace

ParseError::ParseError(std::filesystem::path file, std::uint64_t line, std::string reason, std::string text)
    : Error(Exit::dataerr, parse_message(file, line, reason, text)),
      file_(std::move(file)),
      line_(line),
      reason_(std::move(reason)),
      text_(std::move(text)) {}

Error sys_error(Exit code, std::string_view what, const std::filesystem::path& path, int errnum) {
    std::string m(what);
    m += " ";
    m += path.string();
    m += ": ";
    m += std::strerror(errnum);
    return Error(code, m);
}

bool path_exists(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return true;
    int e = errno;
    if (e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG) return false;  // no file can have that name
    throw sys_error(exit_for_read_errno(e), "cannot look up", path, e);
}

Exit exit_for_create_errno(int errnum) noexcept {
    return errnum == ENOSPC || errnum == EDQUOT || errnum == EIO ? Exit::ioerr : Exit::cantcreat;
}

Exit exit_for_read_errno(int errnum) noexcept {
    switch (errnum) {
        case ENOMEM:
            return Exit::tempfail;
        case EIO:
            return Exit::ioerr;
        default:
            return Exit::noinput;
    }
}

std::string printable(std::string_view bytes, bool keep_utf8) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(bytes[i]);
        char32_t cp = 0;
        std::size_t n = keep_utf8 && c >= 0x80 ? utf8_decode(bytes, i, cp) : 0;
        if (n > 0 && cp > 0x9f) {
            out.append(bytes.substr(i, n));
            i += n - 1;
            continue;
        }
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\0':
                out += "\\0";
                break;
            default:
                if (c < 0x20 || c >= 0x7f) {
                    out += "\\x";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out;
}

}  // namespace qv
