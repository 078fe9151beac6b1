#include "qvmail/cdb_sources.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "qvmail/assign.hpp"
#include "qvmail/atomic_file.hpp"
#include "qvmail/control.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/tcprules.hpp"
#include "qvmail/text.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

// tcp.<service> rules files: the one TCP_FILE names, plus every tcp.<service> (or its cdb) in the same
// directory. <service> is letters, digits, '_' and '-', so backups such as tcp.smtp.old are left out.
bool is_service_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

void discover_tcp(const Paths& paths, std::vector<CdbSource>& out) {
    std::set<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(paths.etc_dir(), ec), end; !ec && it != end; it.increment(ec)) {
        std::string f = it->path().filename().string();
        if (f.size() > 4 && f.ends_with(".cdb")) f.resize(f.size() - 4);
        if (f.starts_with("tcp.") && is_service_name(std::string_view(f).substr(4))) names.insert(f);
    }
    std::string main_name = paths.tcp_file.filename().string();
    out.push_back({main_name, paths.tcp_file, fs::path(paths.tcp_file.string() + ".cdb"), "tcprules", tcprules::compile,
                   paths.open_smtp});
    for (auto& n : names) {
        if (n == main_name) continue;
        fs::path src = paths.etc_dir() / n;
        out.push_back({n, src, fs::path(src.string() + ".cdb"), "tcprules", tcprules::compile});
    }
}

void discover_morercpthosts(const Paths& paths, std::vector<CdbSource>& out) {
    out.push_back({"morercpthosts", paths.control("morercpthosts"), paths.control("morercpthosts.cdb"), "qmail-newmrh",
                   compile_lowercase_lines});
}

void discover_relaymailfrom(const Paths& paths, std::vector<CdbSource>& out) {
    out.push_back({"relaymailfrom", paths.control("relaymailfrom"), paths.control("relaymailfrom.cdb"), "qmail-cdb",
                   compile_lowercase_lines});
}

void discover_assign(const Paths& paths, std::vector<CdbSource>& out) {
    out.push_back({"assign", paths.assigndir / "assign", paths.assigndir / "cdb", "qmail-newu", compile_assign});
}

// The files backend's user database of every domain: vpasswd.<domain>.
void discover_vpasswd(const Paths& paths, std::vector<CdbSource>& out) {
    if (!path_exists(paths.assigndir / "assign")) return;
    // the real domains: an alias domain's directory is a link to its real domain's (the same files)
    for (auto& d : list_domains(paths))
        out.push_back({"vpasswd." + d.name, d.dir / "vpasswd", d.dir / "vpasswd.cdb", "vpasswd", compile_vpasswd});
}

// The table of source kinds. New kinds of cdb are registered here.
using Discover = void (*)(const Paths&, std::vector<CdbSource>&);
constexpr Discover kSourceKinds[] = {
    discover_tcp, discover_morercpthosts, discover_relaymailfrom, discover_assign, discover_vpasswd,
};

bool newer(const struct stat& a, const struct stat& b) {
    if (a.st_mtim.tv_sec != b.st_mtim.tv_sec) return a.st_mtim.tv_sec > b.st_mtim.tv_sec;
    return a.st_mtim.tv_nsec > b.st_mtim.tv_nsec;
}

}  // namespace

std::vector<CdbSource> cdb_sources(const Paths& paths) {
    std::vector<CdbSource> out;
    for (Discover d : kSourceKinds) d(paths, out);
    return out;
}

CompileStats compile_lowercase_lines(LineReader& in, CdbSink& sink) {
    CompileStats stats;
    std::string key;
    std::string_view line;
    while (in.next(line)) {
        ++stats.lines;
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        if (line.empty() || line[0] == '#') continue;
        key.assign(line);
        ascii_lower_in_place(key);
        if (key.back() == '\r' && stats.warnings.size() < 100)
            stats.warnings.push_back({in.line_number(),
                                      "line ends in a carriage return, which becomes part of the key "
                                      "(DOS line endings?)"});
        sink.add(key, {});
        ++stats.entries;
    }
    return stats;
}

CompileStats compile_vpasswd(LineReader& in, CdbSink& sink) {
    CompileStats stats;
    std::string_view line;
    while (in.next(line)) {
        ++stats.lines;
        if (line.empty() || line[0] == '#') continue;
        if (!parse_vpasswd_line(line))
            throw ParseError(in.name(), in.line_number(), "not a vpasswd line (name:passwd:uid:gid:gecos:dir:quota)",
                             std::string(line));
        std::size_t colon = line.find(':');
        sink.add(line.substr(0, colon), line.substr(colon + 1));
        ++stats.entries;
    }
    return stats;
}

void stage_cdb(FileTransaction& tx, const fs::path& source, const fs::path& target, std::string_view content,
               CdbCompiler compile) {
    if (tx.dry_run()) {
        tx.note("write " + target.string());
        return;
    }
    tx.stage_job(target, 0644, [text = std::string(content), source, compile](AtomicFile& f) {
        CdbWriter w(f.fd(), f.temp_path());
        LineReader in = LineReader::from_text(text, source);
        compile(in, w);
        w.finish();
    });
}

std::string_view to_string(CdbStatus s) noexcept {
    switch (s) {
        case CdbStatus::rebuilt:
            return "rebuilt";
        case CdbStatus::up_to_date:
            return "up-to-date";
        case CdbStatus::would_rebuild:
            return "would-rebuild";
        case CdbStatus::valid:
            return "valid";
    }
    return "?";
}

bool cdb_is_current(const CdbSource& src) {
    struct stat sst {
    }, tst{};
    if (::stat(src.source.c_str(), &sst) != 0) return true;
    if (::stat(src.target.c_str(), &tst) != 0 || newer(sst, tst)) return false;
    struct stat pst {};
    if (src.prefix && ::stat(src.prefix->c_str(), &pst) == 0 && newer(pst, tst)) return false;
    try {
        CdbReader current(src.target);
    } catch (const Error&) {
        return false;
    }
    return true;
}

std::string grant_rules(const std::vector<RelayGrant>& grants, std::string_view static_rules,
                        std::vector<RelayGrant>* shut) {
    if (grants.empty()) return {};
    // How the static rules alone treat each grant's client: the first of its probe keys that a rule
    // has decides, and for a key, the first rule (as tcpserver reads the cdb).
    std::map<std::string, std::optional<bool>> decided;  // probe key -> deny?, once a rule has it
    std::vector<std::vector<std::string>> probes;
    for (auto& g : grants) {
        probes.push_back(tcprules::probe_keys(tcprules::Client{g.ip, std::nullopt, std::nullopt}));
        for (auto& k : probes.back()) decided.emplace(k, std::nullopt);
    }
    LineReader in = LineReader::from_text(static_rules, "tcp rules");
    std::string_view line;
    std::string value;
    while (in.next(line)) {
        tcprules::ParsedLine p = tcprules::parse_line(line, value);
        if (p.kind != tcprules::LineKind::rule || !p.error.empty()) continue;
        tcprules::expand_address(p.address, [&](std::string_view key) {
            auto it = decided.find(std::string(key));
            if (it != decided.end() && !it->second) it->second = p.deny;
        });
    }
    std::string rules;
    for (std::size_t i = 0; i < grants.size(); ++i) {
        bool denied = false;
        for (auto& k : probes[i])
            if (auto d = decided[k]) {
                denied = *d;
                break;
            }
        if (denied) {
            if (shut) shut->push_back(grants[i]);
            continue;
        }
        rules += grants[i].ip + ":allow,RELAYCLIENT=\"\"\n";
    }
    return rules;
}

namespace {

// Compiles the source, preceded by its prefix file when there is one.
CompileStats compile_source(const CdbSource& src, CdbSink& sink) {
    if (src.prefix && path_exists(*src.prefix)) {
        std::vector<RelayGrant> grants = read_open_smtp(*src.prefix);
        if (!grants.empty()) {
            std::string rules = grant_rules(grants, ControlFile::load(src.source).text());  // from_text() keeps a view
            LineReader in = LineReader::from_text(rules, *src.prefix);
            src.compile(in, sink);
        }
    }
    LineReader in(src.source);
    return src.compile(in, sink);
}

}  // namespace

CdbReport build_cdb(const CdbSource& src, const CdbBuildOptions& opts) {
    CdbReport r;
    struct stat sst {
    }, tst{};
    if (::stat(src.source.c_str(), &sst) != 0) {
        int e = errno;
        throw sys_error(exit_for_read_errno(e), "cannot read the source of " + src.name + ",", src.source, e);
    }
    if (!S_ISREG(sst.st_mode)) throw Error(Exit::noinput, src.source.string() + ": not a regular file");

    // Is the cdb current? Newer than its source, and its header intact.
    bool have_target = ::stat(src.target.c_str(), &tst) == 0;
    struct stat pst {};
    bool prefix_newer = src.prefix && ::stat(src.prefix->c_str(), &pst) == 0 && have_target && newer(pst, tst);
    if (!have_target) {
        r.reason = "no cdb yet";
    } else if (newer(sst, tst) || prefix_newer) {
        r.reason = prefix_newer ? "relay grants changed" : "source changed";
    } else {
        try {
            CdbReader current(src.target);
            r.was_up_to_date = true;
            r.records = current.header_records();
            r.bytes = current.size();
        } catch (const Error& e) {
            r.reason = "cdb damaged";
        }
    }
    if (r.was_up_to_date && opts.force) r.reason = "forced";

    bool rebuild = !r.was_up_to_date || opts.force;
    if (opts.check || (opts.dry_run && rebuild)) {
        CdbCounter counter;
        CompileStats stats = compile_source(src, counter);
        r.status = opts.check ? CdbStatus::valid : CdbStatus::would_rebuild;
        r.records = counter.records();
        r.bytes = counter.bytes();
        r.warnings = std::move(stats.warnings);
        return r;
    }
    if (!rebuild) {
        r.status = CdbStatus::up_to_date;
        return r;
    }

    std::optional<Owner> owner;
    if (::geteuid() == 0) owner = Owner{sst.st_uid, sst.st_gid};
    AtomicFile out(src.target, sst.st_mode & 0666, owner);
    CdbWriter writer(out.fd(), out.temp_path());
    CompileStats stats = compile_source(src, writer);
    writer.finish();
    out.commit();
    r.status = CdbStatus::rebuilt;
    r.records = writer.records();
    r.bytes = writer.bytes();
    r.warnings = std::move(stats.warnings);
    return r;
}

}  // namespace qv
