#include "qvmail/check.hpp"

#include <sys/stat.h>

#include <set>

#include "qvmail/assign.hpp"
#include "qvmail/bounce.hpp"
#include "qvmail/cdb_sources.hpp"
#include "qvmail/control.hpp"
#include "qvmail/delivery_instruction.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/domain_sync.hpp"
#include "qvmail/envrules.hpp"
#include "qvmail/error.hpp"
#include "qvmail/filter.hpp"
#include "qvmail/outgoing_ip.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv {

namespace fs = std::filesystem;

CheckSummary check_host(const Paths& paths, Store& store, const ProgressFn& progress) {
    CheckSummary out;
    auto add = [&](Finding::Severity s, const std::string& domain, const char* check, std::string msg) {
        out.findings.push_back(Finding{s, domain, check, std::move(msg)});
    };
    auto entries = [&](const char* name) {
        auto e = ControlFile::load(paths.control(name)).entries();
        return std::set<std::string>(e.begin(), e.end());
    };
    std::set<std::string> rcpthosts = entries("rcpthosts"), more = entries("morercpthosts"),
                          vdomains = entries("virtualdomains"), locals = entries("locals");

    std::optional<HeaderList> headers;
    try {
        headers = HeaderList::load(paths);
    } catch (const Error& e) {
        add(Finding::problem, "", "headerlist", e.what());
    }

    std::vector<Domain> domains;
    try {
        domains = list_domains(paths);
    } catch (const Error& e) {
        add(Finding::problem, "", "assign", e.what());
    }
    out.domains = domains.size();
    std::set<std::string> known;
    std::uint64_t checked = 0;
    for (auto& d : domains) {
        if (progress) progress(checked++, domains.size());
        known.insert(d.name);
        for (const auto& a : alias_domains(d)) {  // its alias domains, each with its link and line
            auto ad = find_domain(paths, a);
            if (ad && ad->alias == a && ad->name == d.name)
                known.insert(a);
            else
                add(Finding::problem, d.name, "alias domains",
                    d.name + "/.aliasdomains lists " + a + ", which users/assign does not make an alias domain of " + d.name);
        }
        std::error_code ec;
        struct stat st {};
        if (::stat(d.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            add(Finding::problem, d.name, "directory", "domain directory " + d.dir.string() + " is missing");
            continue;
        }
        if (st.st_uid != d.owner.uid || st.st_gid != d.owner.gid)
            add(Finding::problem, d.name, "owner",
                d.dir.string() + " belongs to " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) +
                    ", users/assign says " + std::to_string(d.owner.uid) + ":" + std::to_string(d.owner.gid));
        if (!fs::exists(d.dir / ".qmail-default", ec)) {
            add(Finding::problem, d.name, "qmail-default", (d.dir / ".qmail-default").string() + " is missing");
        } else if (!d.delivery) {
            add(Finding::warning, d.name, "qmail-default",
                (d.dir / ".qmail-default").string() + " does not run vdelivermail or vfilter (edited by hand?)");
        } else {
            try {
                parse_handler(d.delivery->handler);
            } catch (const Error& e) {
                add(Finding::problem, d.name, "handler", e.what());
            }
        }
        if (!rcpthosts.count(d.name) && !more.count(d.name))
            add(Finding::problem, d.name, "rcpthosts", "not in control/rcpthosts or control/morercpthosts");
        if (!vdomains.count(d.name + ":" + d.name))
            add(Finding::problem, d.name, "virtualdomains", "control/virtualdomains lacks " + d.name + ":" + d.name);
        if (locals.count(d.name))
            add(Finding::problem, d.name, "locals", "also listed in control/locals, which takes precedence");
        try {
            for (auto& u : store.users(d.ref())) {
                ++out.mailboxes;
                if (!fs::is_directory(fs::path(u.dir) / "Maildir", ec))
                    add(Finding::problem, d.name, "home", u.name + "@" + d.name + ": " + u.dir + "/Maildir is missing");
            }
            if (!store.get_user(d.ref(), "postmaster"))
                add(Finding::warning, d.name, "postmaster", "no postmaster mailbox (RFC 5321 wants one)");
        } catch (const Error& e) {
            add(Finding::problem, d.name, "store", e.what());
        }
        // Filter rules: of a mailbox (or prefilt, postfilt), and each one such as vcfilter would take it.
        try {
            for (auto& local : store.filter_owners(d.ref())) {
                std::string who = local + "@" + d.name;
                if (!is_filter_pseudo_user(local) && !store.get_user(d.ref(), local))
                    add(Finding::problem, d.name, "filters", who + " has filter rules but is not a mailbox");
                for (FilterRule r : store.filters(d.ref(), local)) {
                    if (!headers) break;
                    try {
                        check_filter_rule(r, *headers);
                    } catch (const Error& e) {
                        add(Finding::problem, d.name, "filters",
                            who + " filter " + std::to_string(r.number) + " cannot be applied: " + e.what());
                    }
                }
            }
        } catch (const Error& e) {
            add(Finding::problem, d.name, "filters", e.what());
        }
    }

    for (auto& v : vdomains) {
        std::size_t c = v.find(':');
        std::string dom = v.substr(0, c);
        if (c != std::string::npos && v.substr(c + 1) == dom && !known.count(dom))
            add(Finding::problem, dom, "virtualdomains",
                "control/virtualdomains routes " + dom + " to a virtual domain that users/assign does not have");
    }
    std::error_code ec;
    for (fs::directory_iterator it(paths.domains_dir(), ec), end; !ec && it != end; it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (!n.empty() && n[0] != '.' && it->is_directory(ec) && !known.count(n))
            add(Finding::problem, n, "directory", it->path().string() + " has no users/assign line");
    }
    // Bounce hooks: the rules file as qmail-send reads it, and the programs of the two variables.
    try {
        BounceRulesSetting setting = bounce_rules_setting(paths);
        std::vector<std::string> problems;
        for (auto& r : load_envrules(setting.file, setting.kind, &problems))
            if (r.pattern.empty() && setting.kind == PatternKind::regex)
                add(Finding::warning, "", "bounce.envrules",
                    setting.file.string() + ":" + std::to_string(r.line) +
                        ": an empty regular expression matches every sender (<> is the null sender)");
        for (auto& p : problems) add(Finding::problem, "", "bounce.envrules", p + " (qmail-send skips the line)");
    } catch (const Error& e) {
        add(Finding::problem, "", "bounce.envrules", std::string(e.what()) + " (qmail-send defers every bounce)");
    }
    for (const char* var : {"BOUNCEPROCESSOR", "BOUNCEQUEUE"}) {
        auto value = read_service_variable(paths, kSendService, var);
        if (!value) continue;
        try {
            check_bounce_program(*value);
        } catch (const Error& e) {
            add(Finding::problem, "", "bounce",
                std::string(var) + " (" + service_variable_file(paths, kSendService, var).string() + "): " + e.what());
        }
    }
    // Outgoing addresses: every line of outgoingip and outgoingip.<host> is an address.
    for (fs::directory_iterator it(paths.controldir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (n != "outgoingip" && !n.starts_with("outgoingip.")) continue;
        std::vector<std::string> bad;
        outgoingip_entries(it->path(), &bad);
        for (auto& b : bad) add(Finding::problem, "", "outgoingip", b + " (never chosen)");
    }
    for (auto& src : cdb_sources(paths))
        if (!cdb_is_current(src))
            add(Finding::problem, "", "cdb",
                src.target.string() + " is missing or older than " + src.source.string() + "; run qmailctl cdb");
    // A host sharing its domains through the database: what qmailctl sync would change is drift.
    if (store.shares_domains()) {
        try {
            SyncResult sync = sync_domains(paths, store, true);
            for (auto& c : sync.changes)
                add(Finding::problem, c.domain, "database",
                    "not in step with the database: qmailctl sync would " + c.action + " it" +
                        (c.detail.empty() ? "" : " (" + c.detail + ")"));
            for (auto& p : sync.problems) add(Finding::problem, "", "database", p);
        } catch (const Error& e) {
            add(Finding::problem, "", "database", e.what());
        }
    }
    return out;
}

}  // namespace qv
