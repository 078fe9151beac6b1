// The table of text sources that `qmailctl cdb` compiles into cdb databases. Each kind of source
// registers how its files are found and how a file is compiled; later kinds (users/assign, the
// files backend's user databases) are added to the same table.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/cdb.hpp"

namespace qv {

class LineReader;
struct Paths;

using CdbCompiler = CompileStats (*)(LineReader& in, CdbSink& sink);

struct CdbSource {
    std::string name;              // what the administrator types: tcp.smtp, morercpthosts, ...
    std::filesystem::path source;  // the text file
    std::filesystem::path target;  // the cdb
    std::string_view format;       // "tcprules", "qmail-newmrh", ...
    CdbCompiler compile;
    // Compiled ahead of `source` when it exists: for tcp.smtp, the files store's relay grants
    // (open-smtp, the rule before each line's TAB), so that they take precedence as in IndiMail.
    std::optional<std::filesystem::path> prefix = std::nullopt;
};

// The tcprules lines that put the files store's relay grants first in tcp.smtp.cdb, one
// `IP:allow,RELAYCLIENT=""` each, except for clients that `static_rules` (the text of tcp.smtp) deny:
// a POP/IMAP login must not open a host the administrator has shut (those go to `shut`).
struct RelayGrant;
std::string grant_rules(const std::vector<RelayGrant>& grants, std::string_view static_rules,
                        std::vector<RelayGrant>* shut = nullptr);

// Every known source, in table order (tcp rules first, by name). Sources are listed whether or not
// their files exist, so that a missing source can be reported by name.
std::vector<CdbSource> cdb_sources(const Paths& paths);

// Compiler for the files backend's vpasswd: key = name, value = the rest of the line.
CompileStats compile_vpasswd(LineReader& in, CdbSink& sink);

// Compiler for qmail-newmrh-style line files (morercpthosts, relaymailfrom): each line lower-cased,
// trailing spaces and tabs removed, blank and '#' lines skipped; key = the line, value empty.
CompileStats compile_lowercase_lines(LineReader& in, CdbSink& sink);

struct CdbBuildOptions {
    bool force = false;    // rebuild even when the cdb is newer than its source
    bool check = false;    // compile into nothing: validate only
    bool dry_run = false;  // say what would be rebuilt (sources are still compiled, to count)
};

enum class CdbStatus { rebuilt, up_to_date, would_rebuild, valid };
std::string_view to_string(CdbStatus s) noexcept;

struct CdbReport {
    CdbStatus status = CdbStatus::up_to_date;
    bool was_up_to_date = false;  // the cdb was newer than its source (and undamaged) before the run
    std::string reason;           // why it was (or would be) rebuilt
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    std::vector<CompileWarning> warnings;
};

// Stages, in `tx`, the cdb of `source` compiled from `content` (the source's new text, which `tx`
// writes too). A dry run only notes it.
class FileTransaction;
void stage_cdb(FileTransaction& tx, const std::filesystem::path& source, const std::filesystem::path& target,
               std::string_view content, CdbCompiler compile);

// Whether the cdb exists, is not older than its source and has an intact header. A missing source
// counts as current (there is nothing to compile).
bool cdb_is_current(const CdbSource& src);

// Brings one database up to date (or checks it). A new cdb gets its source's mode (without execute
// bits) and, when run as root, its source's owner; an existing cdb keeps its own. Throws Error: 66 when the source is
// missing or unreadable, 65 (ParseError) for a bad line, 73/74 when the cdb cannot be written. On any error the old cdb
// is left untouched and no temporary file remains.
CdbReport build_cdb(const CdbSource& src, const CdbBuildOptions& opts);

}  // namespace qv
