// qmailctl cdb - compile rules and control files into the cdb databases the mail programs read.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <optional>

#include "qmailctl.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/cdb_sources.hpp"
#include "qvmail/error.hpp"
#include "qvmail/lock.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/tcprules.hpp"

namespace qv::qmailctl {

namespace fs = std::filesystem;

namespace {

struct CdbArgs {
    std::vector<std::string> names;
    bool force = false;
    bool check = false;
    std::string lookup;
    std::optional<std::string> host;
    std::optional<std::string> info;
};

std::string known_names(const std::vector<CdbSource>& sources) {
    std::string s;
    for (auto& src : sources) s += (s.empty() ? "" : ", ") + src.name;
    return s;
}

const CdbSource& find_source(const std::vector<CdbSource>& sources, const std::string& name) {
    for (auto& s : sources)
        if (s.name == name) return s;
    throw Error(Exit::usage, "unknown database '" + name + "' (known: " + known_names(sources) + ")");
}

void print_report(const Reporter& rep, const Paths& paths, const CdbSource& src, const CdbReport& r, int width) {
    for (auto& w : r.warnings) rep.warning(src.source.string() + ":" + std::to_string(w.line) + ": " + w.message);
    if (rep.json()) {
        Json j = Json::object();
        j.set("database", src.name).set("status", std::string(to_string(r.status)));
        if (!r.reason.empty() && r.status != CdbStatus::up_to_date) j.set("reason", r.reason);
        if (r.status == CdbStatus::valid) j.set("up_to_date", r.was_up_to_date);
        j.set("records", r.records);
        j.set("bytes", r.bytes);
        j.set("source", src.source.string());
        j.set("cdb", src.target.string());
        j.set("format", std::string(src.format));
        Json warnings = Json::array();
        for (auto& w : r.warnings) warnings.push(Json::object().set("line", w.line).set("message", w.message));
        j.set("warnings", std::move(warnings));
        rep.object(j);
        return;
    }
    std::string status;
    std::string note;
    switch (r.status) {
        case CdbStatus::rebuilt:
            status = "rebuilt";
            note = r.reason;
            break;
        case CdbStatus::up_to_date:
            status = "up to date";
            break;
        case CdbStatus::would_rebuild:
            status = "would rebuild";
            note = r.reason;
            break;
        case CdbStatus::valid:
            status = "valid";
            note = r.was_up_to_date ? "" : "cdb out of date: " + r.reason;
            break;
    }
    char buf[512];
    std::snprintf(buf, sizeof buf, "%-*s %-13s %9llu records %11llu bytes  %s%s%s%s", width, src.name.c_str(),
                  status.c_str(), static_cast<unsigned long long>(r.records), static_cast<unsigned long long>(r.bytes),
                  paths.display(src.target).c_str(), note.empty() ? "" : " (", note.c_str(), note.empty() ? "" : ")");
    rep.line(buf);
}

int run_lookup(const Reporter& rep, const Paths& paths, const std::vector<CdbSource>& sources, const CdbArgs& a) {
    if (a.names.size() > 1) throw Error(Exit::usage, "--lookup takes at most one database NAME");
    const CdbSource& src = find_source(sources, a.names.empty() ? paths.tcp_file.filename().string() : a.names[0]);
    std::error_code ec;
    if (!fs::exists(src.target, ec))
        throw Error(Exit::noinput, "no " + src.target.string() + " yet: run qmailctl cdb " + src.name);
    CdbReader db(src.target);
    if (fs::exists(src.source, ec) && fs::last_write_time(src.source, ec) > fs::last_write_time(src.target, ec))
        rep.warning(src.target.string() + " is older than " + src.source.string() + "; run qmailctl cdb to rebuild it");

    if (src.format != "tcprules") {
        std::string key = a.lookup;
        for (char& c : key)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        bool found = db.find(key).has_value();
        if (rep.json())
            rep.object(Json::object().set("database", src.name).set("key", key).set("found", found));
        else
            rep.line(src.name + ": " + printable(key) + ": " + (found ? "found" : "not found"));
        return found ? 0 : 1;
    }

    tcprules::Client client{a.lookup, a.host, a.info};
    tcprules::Match m = tcprules::lookup(db, client);
    std::optional<tcprules::SourceRule> origin;
    if (m.key && fs::exists(src.source, ec)) origin = tcprules::find_source_rule(src.source, *m.key);
    const char* decision = m.decision.deny ? "deny" : "allow";
    if (rep.json()) {
        Json j = Json::object();
        j.set("database", src.name).set("ip", client.ip);
        j.set("host", client.host ? Json(*client.host) : Json());
        j.set("info", client.info ? Json(*client.info) : Json());
        j.set("decision", decision);
        j.set("rule", m.key ? Json(*m.key) : Json());
        j.set("source", src.source.string());
        j.set("line", origin ? Json(origin->line) : Json());
        j.set("text", origin ? Json(origin->text) : Json());
        Json env = Json::array();
        for (auto& [k, v] : m.decision.env) env.push(Json::object().set("name", k).set("value", v));
        j.set("env", std::move(env));
        j.set("probed", m.probed);
        rep.object(j);
    } else {
        std::string who = printable(client.ip);
        if (client.info) who = printable(*client.info) + "@" + who;
        if (client.host) who += " (" + printable(*client.host) + ")";
        std::string l = src.name + ": " + who + ": " + decision;
        if (!m.key) {
            l += ", no rule matches (tcpserver allows the connection)";
        } else {
            l += ", rule \"" + printable(*m.key) + "\"";
            if (origin) l += " at " + paths.display(src.source) + ":" + std::to_string(origin->line);
        }
        rep.line(l);
        for (auto& [k, v] : m.decision.env) rep.line("  " + printable(k) + "=\"" + printable(v) + "\"");
        std::string probed;
        for (auto& k : m.probed) probed += (probed.empty() ? "\"" : ", \"") + printable(k) + "\"";
        rep.info("keys tried: " + probed);
    }
    return m.decision.deny ? 1 : 0;
}

int run_cdb(const Program& prog, const CdbArgs& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    std::error_code ec;
    if (!fs::is_directory(paths.qmailhome, ec))
        throw Error(Exit::config, "QMAILHOME " + paths.qmailhome.string() + " is not a directory (set QMAILHOME)");
    std::vector<CdbSource> sources = cdb_sources(paths);
    if (!a.lookup.empty()) return run_lookup(rep, paths, sources, a);

    std::vector<const CdbSource*> selected;
    if (a.names.empty()) {
        for (auto& s : sources) {
            if (fs::exists(s.source, ec))
                selected.push_back(&s);
            else if (fs::exists(s.target, ec))
                rep.warning(s.target.string() + " has no source " + s.source.string() + "; left as it is");
        }
        if (selected.empty())
            rep.warning("nothing to compile: none of the sources exists under " + paths.qmailhome.string());
    } else {
        for (auto& n : a.names) selected.push_back(&find_source(sources, n));
    }

    CdbBuildOptions opts{a.force, a.check, prog.common.dry_run};
    std::optional<FileLock> lock;
    if (!opts.check && !opts.dry_run) lock.emplace(admin_lock(paths, std::chrono::seconds(prog.common.lock_wait)));

    int width = 15;
    for (const CdbSource* s : selected) width = std::max(width, static_cast<int>(s->name.size()));
    int rc = 0;
    Progress progress(rep, "qmailctl cdb: databases");
    std::uint64_t done = 0;
    for (const CdbSource* s : selected) {
        progress.update(done++, selected.size());
        try {
            CdbReport r = build_cdb(*s, opts);
            progress.clear();
            print_report(rep, paths, *s, r, width);
            if (r.status == CdbStatus::rebuilt)
                audit(prog.name, "rebuilt " + s->target.string() + " from " + s->source.string() + " (" +
                                     std::to_string(r.records) + " records, " + r.reason + ")");
        } catch (const Error& e) {
            progress.clear();
            Json extra = Json::object();
            extra.set("database", s->name);
            rep.error(e, &extra);
            if (rc == 0) rc = static_cast<int>(e.code());
        }
    }
    return rc;
}

}  // namespace

void setup_cdb(CLI::App& app, Program& prog) {
    auto args = std::make_shared<CdbArgs>();
    CLI::App* sub = app.add_subcommand("cdb", "Compile rules and control files into their cdb databases");
    sub->footer(
        "Rebuilds every cdb whose source is newer than it: etc/tcp.smtp and the other etc/tcp.<service> rules\n"
        "files (tcprules format), control/morercpthosts and control/relaymailfrom (qmail-newmrh format).\n"
        "Exit status: 0 success (with --lookup: allowed or found); 1 with --lookup: denied or not found;\n"
        "64 usage; 65 bad line in a source; 66 source missing or unreadable; 73 cannot create the cdb;\n"
        "74 I/O error; 75 another command holds the lock; 78 QMAILHOME missing. See qmailctl(8).");
    sub->add_option("NAME", args->names, "Databases to work on (default: every one that has a source)");
    sub->add_flag("-f,--force", args->force, "Rebuild even when a cdb is newer than its source");
    auto* check = sub->add_flag("-c,--check", args->check, "Validate the sources and write nothing");
    add_common_options(*sub, prog.common,
                       opt_json | opt_dry_run | opt_quiet | opt_quiet_short | opt_verbose | opt_lock_wait);
    auto* lookup = sub->add_option("-l,--lookup", args->lookup,
                                   "Explain how a database answers: for tcp.* the client IP address (exit 0 allowed, "
                                   "1 denied), for line databases a key (exit 0 found, 1 not found)");
    lookup->type_name("KEY");
    sub->add_option("--host", args->host, "With --lookup: the client's host name (TCPREMOTEHOST)")
        ->type_name("NAME")
        ->needs(lookup);
    sub->add_option("--info", args->info, "With --lookup: the client's ident user (TCPREMOTEINFO)")
        ->type_name("USER")
        ->needs(lookup);
    lookup->excludes(check);
    sub->callback([&prog, args] { prog.action = [&prog, args] { return run_cdb(prog, *args); }; });
    prog.positional_completions[sub] = [](const std::string&) {
        std::vector<std::string> names;
        for (auto& s : cdb_sources(Paths::from_env())) names.push_back(s.name);
        return names;
    };
}

}  // namespace qv::qmailctl
