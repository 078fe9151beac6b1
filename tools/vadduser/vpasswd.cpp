// vpasswd - change a mailbox's password. See vpasswd(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vpasswd {

namespace {

int run(const Program& prog, const std::string& address, const PasswordOptions& po) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    Address a = parse_address(address);
    auto store = open_store(paths, prog.mysql);
    Domain d = require_domain(paths, *store, a.domain);
    require_user(*store, d, a.local);  // fail before asking for a password
    ObtainedPassword pw = obtain_password(po, rep, a.str(), domain_hash_method(paths, d));
    auto lock = lock_for_change(paths, prog.common);
    UserRecord u = require_user(*store, d, a.local);
    u.passwd = pw.hash;
    u.scram = pw.scram;  // the old clear text no longer matches: kept only with -C
    update_user(*store, d, u, prog.common.dry_run);
    if (!prog.common.dry_run) audit(prog.name, "changed the password of " + a.str());
    if (rep.json()) {
        Json j = Json::object();
        j.set("address", a.str()).set("status", prog.common.dry_run ? "would-change" : "changed");
        if (pw.generated) j.set("password", *pw.generated);
        rep.object(j);
        return 0;
    }
    if (pw.generated) rep.line("Password is " + *pw.generated);
    rep.line(std::string(prog.common.dry_run ? "would change" : "changed") + " the password of " + a.str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vpasswd");
    std::string address;
    PasswordOptions po;
    Unsupported unsupported;
    CLI::App app{"Change the password of a mailbox.", "vpasswd"};
    app.set_help_flag("--help", "Print this help message and exit");
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("ADDRESS", address, "The mailbox: user@domain")->required();
    app.add_option("PASSWORD", po.positional, "The new password (better: --password-stdin or a prompt)");
    add_password_options(app, po);
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    for (auto* o : {"-m", "-S", "-I"}) unsupported.add(app, o, true, "SCRAM credentials are not supported yet");
    app.footer(
        "Exit status: 0 changed; 64 usage; 65 bad address or password; 66 unreadable password file; 67 no\n"
        "such mailbox; 68 no such domain; 73/74/77 files cannot be written; 75 locked. See vpasswd(8).");
    app.callback([&] {
        unsupported.check();
        prog.action = [&] { return run(prog, address, po); };
    });
    prog.positional_completions[&app] = complete_addresses;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vpasswd
