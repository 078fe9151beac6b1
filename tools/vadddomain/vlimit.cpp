// vlimit - show or set a domain's limits: the default quota of its new mailboxes. See vlimit(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/domain_limits.hpp"
#include "qvmail/error.hpp"
#include "qvmail/maildir.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vlimit {

namespace {

struct Args {
    std::string domain;
    bool show = false, remove = false;
    std::optional<std::string> quota, count;
};

std::string or_none(const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("NOQUOTA");
}

int run(const Program& prog, const Args& a) {
    Reporter rep(prog.name, prog.common);
    const bool change = a.remove || a.quota || a.count;
    if (a.remove && (a.quota || a.count)) throw Error(Exit::usage, "-D removes the limits: give it without -q or -m");
    Paths paths = Paths::from_env();
    std::string name = normalize_domain(a.domain);
    // -q: NOQUOTA, or a size (k/m/g) as vadduser -q takes it; -m: a number of messages, or NOQUOTA
    std::optional<std::uint64_t> quota, count;
    if (a.quota && !equal_ignoring_case(*a.quota, "NOQUOTA")) {
        auto q = try_parse_quota(normalize_quota(*a.quota));
        if (!q || !q->bytes || q->count)
            throw Error(Exit::dataerr, "-q " + printable(*a.quota) + ": expected NOQUOTA or a size such as 500M");
        quota = q->bytes;
    }
    if (a.count && !equal_ignoring_case(*a.count, "NOQUOTA")) {
        count = parse_decimal(*a.count);
        if (!count) throw Error(Exit::dataerr, "-m " + printable(*a.count) + ": expected a number of messages or NOQUOTA");
    }
    auto lock = change ? lock_for_change(paths, prog.common) : std::optional<FileLock>{};
    Domain d = require_domain(paths, name);
    DomainLimits limits = read_domain_limits(d);
    std::vector<std::string> steps;
    if (change) {
        if (a.remove) limits = DomainLimits{};
        if (a.quota) limits.default_quota = quota;
        if (a.count) limits.default_maxmsgcount = count;
        steps = write_domain_limits(d, limits, prog.common.dry_run);
        if (!prog.common.dry_run)
            audit(prog.name, "domain " + d.name + ": default quota " + or_none(limits.default_quota) +
                                 ", default message count " + or_none(limits.default_maxmsgcount));
    }
    if (rep.json()) {
        Json j = Json::object();
        j.set("domain", d.name)
            .set("default_quota", limits.default_quota ? Json(*limits.default_quota) : Json())
            .set("default_maxmsgcount", limits.default_maxmsgcount ? Json(*limits.default_maxmsgcount) : Json())
            .set("new_mailbox_quota", default_mailbox_quota_of(limits));
        if (change) j.set("status", prog.common.dry_run ? "would-change" : "changed");
        if (rep.show_steps() && change) j.set("steps", steps);
        rep.object(j);
        return 0;
    }
    rep.steps(steps);
    if (change && !a.show && !prog.common.dry_run) {
        rep.line(a.remove ? "Limits deleted" : "limits of " + d.name + " changed");
        return 0;
    }
    rep.line("Domain Name              : " + d.name);
    rep.line("Default User Quota       : " + or_none(limits.default_quota));
    rep.line("Default User Message Cnt : " + or_none(limits.default_maxmsgcount));
    rep.line("New mailboxes get        : " + default_mailbox_quota_of(limits));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vlimit");
    Args a;
    Unsupported unsupported;
    CLI::App app{"Show or set a domain's limits (IndiMail's vlimit): the quota and message count new mailboxes get\n"
                 "when vadduser is given no -q.",
                 "vlimit"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("DOMAIN", a.domain, "The domain")->required();
    app.add_flag("-s,--show", a.show, "Show the limits (the default when nothing is changed)");
    app.add_flag("-D,--delete", a.remove, "Delete the domain's limits: new mailboxes get NOQUOTA");
    app.add_option("-q,--default-quota", a.quota, "Default quota of new mailboxes: a size (k/m/g suffixes) or NOQUOTA")
        ->type_name("QUOTA");
    app.add_option("-m,--default-count", a.count,
                   "Default message count of new mailboxes (with a default quota), or NOQUOTA")
        ->type_name("COUNT");
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_verbose | opt_lock_wait);
    for (const char* o : {"-e", "-t", "-N", "-Q", "-M", "-P", "-A", "-F", "-R", "-L", "-g", "-p", "-a", "-f", "-r",
                          "-l", "-u", "-o", "-x", "-z"})
        unsupported.add(app, o, true, "only the default quota (-q) and message count (-m) are kept");
    app.footer(
        "Kept in <domain dir>/.qmailadmin-limits (vpopmail's file, which qmailadmin reads), on either store.\n"
        "Exit status: 0 shown or changed; 64 usage or an option not supported; 65 a bad name, quota or count\n"
        "(or a broken .qmailadmin-limits); 68 no such domain; 73/74/77 the file cannot be written; 75\n"
        "another command holds the lock. See vlimit(8).");
    app.callback([&] {
        unsupported.check();
        prog.action = [&] { return run(prog, a); };
    });
    prog.positional_completions[&app] = complete_domain_names;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vlimit
