// vadddomain - add a virtual domain with its postmaster. See vadddomain(8).
#include <pwd.h>

#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/delivery_instruction.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vadddomain {

namespace {

struct Args {
    std::string domain;
    std::optional<std::string> quota, handler, user, base_dir, base_path;
    std::optional<unsigned> uid, gid;
    bool vfilter = false, chkrcpt = false, bulk = false;
    PasswordOptions pw;
};

Owner resolve_owner(const Args& a) {
    Owner o = default_domain_owner();
    if (a.user) {
        struct passwd* pw = ::getpwnam(a.user->c_str());
        if (!pw) throw Error(Exit::nouser, "user " + *a.user + " not found in the password database");
        o = Owner{pw->pw_uid, pw->pw_gid};
    }
    if (a.uid) o.uid = *a.uid;
    if (a.gid) o.gid = *a.gid;
    return o;
}

int run(const Program& prog, Args& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    AddDomainRequest req;
    req.name = normalize_domain(a.domain);
    req.owner = resolve_owner(a);
    if (a.base_dir) req.base_dir = std::filesystem::absolute(*a.base_dir);
    if (a.base_path) req.base_path = std::filesystem::absolute(*a.base_path);
    if (a.handler) req.delivery.handler = parse_handler(*a.handler).text;
    req.delivery.vfilter = a.vfilter;
    req.chkrcpt = a.chkrcpt;
    req.bulk = a.bulk;
    if (a.quota) req.postmaster_quota = normalize_quota(*a.quota);
    if (a.pw.hash_method) {
        req.hash = parse_hash_method(*a.pw.hash_method);
        if (!req.hash) throw Error(Exit::usage, "unknown hash method '" + *a.pw.hash_method + "'");
    }
    Domain probe;
    probe.hash = req.hash;
    ObtainedPassword pw = obtain_password(a.pw, rep, "postmaster@" + req.name, domain_hash_method(paths, probe));
    req.postmaster_passwd = pw.hash;
    req.postmaster_scram = pw.scram;

    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    ChangeReport report;
    Domain d = add_domain(paths, *store, req, prog.common.dry_run, &report);
    if (!prog.common.dry_run)
        audit(prog.name, "added domain " + d.name + " (" + d.dir.string() + ", uid " + std::to_string(d.owner.uid) +
                             ", " + std::string(store->backend()) + " store)");

    if (rep.json()) {
        Json j = Json::object();
        j.set("domain", d.name).set("status", prog.common.dry_run ? "would-add" : "added");
        j.set("dir", d.dir.string());
        j.set("uid", d.owner.uid);
        j.set("gid", d.owner.gid);
        j.set("base_path", d.base_path.string());
        j.set("handler", req.delivery.handler);
        j.set("program", req.delivery.vfilter ? "vfilter" : "vdelivermail");
        j.set("postmaster", "postmaster@" + d.name);
        if (pw.generated) j.set("password", *pw.generated);
        j.set("store", std::string(store->backend()));
        if (rep.show_steps()) j.set("steps", report.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(report.steps);
    if (pw.generated) rep.line("Password is " + *pw.generated);
    if (!prog.common.dry_run) rep.line("added domain " + d.name + " with postmaster@" + d.name);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vadddomain");
    Args a;
    Unsupported unsupported;
    CLI::App app{"Add a virtual domain: its directory, users/assign line, control files and postmaster mailbox.",
                 "vadddomain"};
    app.set_help_flag("--help", "Print this help message and exit");
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("DOMAIN", a.domain, "The domain to add (lower-cased; punycode for non-ASCII names)")->required();
    app.add_option("PASSWORD", a.pw.positional, "The postmaster's password (better: --password-stdin or a prompt)");
    add_password_options(app, a.pw);
    app.add_option("-q,--quota", a.quota, "The postmaster's quota: NOQUOTA, bytes (k/m/g), or size,count")
        ->type_name("QUOTA");
    app.add_option("-E,--handler", a.handler,
                   "Unknown-user handler: bounce-no-mailbox (default), delete, /path/to/Maildir, user@domain or "
                   "domain:host:port")
        ->type_name("HANDLER");
    app.add_flag("-f,--vfilter", a.vfilter,
                 "Deliver through vfilter (the domain's mail filters) instead of vdelivermail");
    app.add_option("-u,--user", a.user, "Take the domain's uid and gid from this system user")->type_name("USER");
    app.add_option("-i,--uid", a.uid, "The domain's uid")->type_name("UID");
    app.add_option("-g,--gid", a.gid, "The domain's gid")->type_name("GID");
    app.add_option("-d,--dir", a.base_dir, "Put the domain in DIR/domains/DOMAIN (default: DOMAINDIR)")
        ->type_name("DIR");
    app.add_option("-B,--base-path", a.base_path, "Keep the domain's mailboxes under PATH (default: BASE_PATH)")
        ->type_name("PATH");
    app.add_flag("-R,--chkrcpt", a.chkrcpt, "Add the domain to control/chkrcptdomains (recipient check)");
    app.add_flag("-O,--bulk", a.bulk, "Bulk add: leave the cdb rebuilds to a later qmailctl cdb");
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    const std::string cluster = "clustered domains need IndiMail's cluster tables; share one MariaDB instead";
    for (auto* o : {"-D", "-H", "-U", "-P", "-p", "-s"}) unsupported.add(app, o, true, cluster);
    unsupported.add(app, "-c", false, cluster);
    unsupported.add(app, "-t", false, "ETRN/ATRN domains are not supported");
    unsupported.add(app, "-T", true, "AUTOTURN domains are not supported");
    unsupported.add(app, "-l", true, "users-per-level directory hashing is not supported");
    for (auto* o : {"-m", "-S", "-I"}) unsupported.add(app, o, true, "SCRAM credentials are not supported yet");
    app.footer(
        "Exit status: 0 added; 9 the domain exists; 64 usage or an unsupported option; 65 bad name, handler, quota\n"
        "or password; 66 unreadable password file; 67 unknown -u user; 73/74/77 files cannot be written (nothing is\n"
        "left behind); 75 another command holds the lock. See vadddomain(8).");
    app.callback([&] {
        unsupported.check();
        prog.action = [&] { return run(prog, a); };
    });
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vadddomain
