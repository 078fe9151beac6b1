// users/assign (qmail-users(5)) and its compiled form users/cdb, as qmail-newu makes it. Each
// virtual domain has one wildcard line:
//   +example.com-:example.com:<uid>:<gid>:<domain dir>:-::
// which makes qmail-lspawn deliver example.com's mail as <uid> in the domain directory.
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

struct AssignEntry {
    bool wildcard = true;  // '+' line (else '=')
    std::string local;     // the address part matched: "example.com-" for a domain
    std::string user;
    uid_t uid = 0;
    gid_t gid = 0;
    std::filesystem::path dir;
    std::string dash;
    std::string ext;
};

std::string format_assign_line(const AssignEntry& e);
// Parses one assign line; nullopt when it is not a complete "+"/"=" line.
std::optional<AssignEntry> parse_assign_line(std::string_view line);
// The line of a virtual domain.
AssignEntry domain_assign_entry(const std::string& domain, uid_t uid, gid_t gid, const std::filesystem::path& dir);

class AssignFile {
public:
    // A missing file is an empty one (just the terminating "." line).
    static AssignFile load(const std::filesystem::path& path);

    // The line of virtual domain `domain`, if any.
    std::optional<AssignEntry> domain(std::string_view domain) const;
    // Every virtual-domain line, in file order.
    std::vector<AssignEntry> domains() const;
    // Adds a line before the terminating ".".
    void add(const AssignEntry& e);
    // Removes the line of virtual domain `domain` (exact match of its key); returns whether it was there.
    bool remove_domain(std::string_view domain);
    std::string content() const;

private:
    std::string body_;     // the lines before the terminating ".", each ending in '\n'
    std::string trailer_;  // the "." line and whatever follows it
};

// Compiles users/assign into users/cdb exactly as qmail-newu: keys "!" + local (lower-cased; '='
// lines get a trailing NUL), values the six fields NUL-terminated, then the empty key holding the
// wildcard characters. Throws ParseError (65) for a line qmail-newu would refuse.
CompileStats compile_assign(LineReader& in, CdbSink& sink);

}  // namespace qv
