// vadduser - add a mailbox to a virtual domain. See vadduser(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vadduser {

namespace {

struct Args {
    std::string address;
    std::optional<std::string> quota, gecos;
    bool create_dir = false;  // IndiMail's -d: homes are always created
    bool inactive = false;    // IndiMail's -i
    std::optional<std::string> host;  // IndiMail's -H (mdahost)
    PasswordOptions pw;
};

int run(const Program& prog, const Args& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    AddUserRequest req;
    req.address = parse_address(a.address);
    if (a.quota) req.quota = normalize_quota(*a.quota);
    if (a.gecos) req.gecos = check_gecos(*a.gecos);
    req.inactive = a.inactive;
    req.host = a.host;
    auto store = open_store(paths, prog.mysql);
    Domain d = require_domain(paths, *store, req.address.domain);
    ObtainedPassword pw = obtain_password(a.pw, rep, req.address.str(), domain_hash_method(paths, d));
    req.passwd = pw.hash;
    req.scram = pw.scram;

    auto lock = lock_for_change(paths, prog.common);
    ChangeReport report;
    UserRecord u = add_user(paths, *store, req, prog.common.dry_run, &report);
    if (!prog.common.dry_run) audit(prog.name, "added mailbox " + req.address.str() + " (" + u.dir + ")");
    if (rep.json()) {
        Json j = Json::object();
        j.set("address", req.address.str())
            .set("status", prog.common.dry_run ? "would-add" : "added")
            .set("dir", u.dir)
            .set("quota", u.quota)
            .set("gecos", u.gecos)
            .set("active", !a.inactive);
        if (pw.generated) j.set("password", *pw.generated);
        if (rep.show_steps()) j.set("steps", report.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(report.steps);
    if (pw.generated) rep.line("Password is " + *pw.generated);
    if (!prog.common.dry_run) rep.line(std::string(a.inactive ? "added inactive mailbox " : "added mailbox ") + req.address.str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vadduser");
    Args a;
    Unsupported unsupported;
    CLI::App app{"Add a mailbox to a virtual domain, with its home directory and Maildir.", "vadduser"};
    app.set_help_flag("--help", "Print this help message and exit");
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("ADDRESS", a.address, "The mailbox: user@domain")->required();
    app.add_option("PASSWORD", a.pw.positional, "Its password (better: --password-stdin or a prompt)");
    add_password_options(app, a.pw);
    app.add_option("-q,--quota", a.quota,
                   "Quota: NOQUOTA, bytes (k/m/g), or size,count (default: the domain's, vlimit -q, else NOQUOTA)")
        ->type_name("QUOTA");
    app.add_flag("-i,--inactive", a.inactive,
                 "Add the mailbox inactive (IndiMail's -i): its mail bounces until vmoduser --active");
    app.add_option("-c,--comment", a.gecos, "Comment (gecos), e.g. the owner's name; default: the user name")
        ->type_name("TEXT");
    app.add_flag("-d", a.create_dir, "Create the home directory (always done; accepted for IndiMail scripts)");
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    unsupported.add(app, "-l", true, "users-per-level directory hashing is not supported");
    unsupported.add(app, "-b", false, "lastfstab base paths are not supported; set the domain's with vadddomain -B");
    unsupported.add(app, "-B", true, "per-mailbox base paths are not supported; set the domain's with vadddomain -B");
    for (auto* o : {"-m", "-S", "-I"}) unsupported.add(app, o, true, "SCRAM credentials are not supported yet");
    app.add_option("-H,--host", a.host,
                   "With a shared MariaDB: the host the mailbox lives on (its control/me); default: this host")
        ->type_name("HOST");
    unsupported.add(app, "-M", true, "clustered mail stores are not supported");
    app.footer(
        "Exit status: 0 added; 9 the mailbox (or an alias of that name) exists; 64 usage; 65 bad address,\n"
        "password, quota or comment; 66 unreadable password file; 68 no such domain; 73/74/77 files cannot\n"
        "be written (nothing is left behind); 75 another command holds the lock (or the database rolled the change\n"
        "back five times); 64 --host without a shared database; 68 also: no such host. See vadduser(8).");
    app.callback([&] {
        unsupported.check();
        prog.action = [&] { return run(prog, a); };
    });
    prog.positional_completions[&app] = complete_addresses;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vadduser
