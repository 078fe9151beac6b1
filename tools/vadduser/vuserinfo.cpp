// vuserinfo - show a mailbox. See vuserinfo(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/domain_sync.hpp"
#include "qvmail/error.hpp"
#include "qvmail/password.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vuserinfo {

namespace {

struct Fields {
    bool name = false, passwd = false, uid = false, gid = false, gecos = false, dir = false, quota = false, all = false;
    bool any() const { return name || passwd || uid || gid || gecos || dir || quota; }
};

std::string label(const char* l, const std::string& v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%-14s: ", l);
    return buf + v;
}

std::string hash_kind(const std::string& h) {
    if (auto m = hash_method_of(h)) return std::string(to_string(*m));
    if (h.size() == 13) return "DES";
    return "unknown";
}

std::string quota_text(const std::string& q) {
    Quota parsed = parse_quota(q);
    if (!parsed.bytes) return "unlimited";
    char buf[64];
    double mib = static_cast<double>(*parsed.bytes) / (1024.0 * 1024.0);
    if (mib >= 1024)
        std::snprintf(buf, sizeof buf, " [%.2f GiB]", mib / 1024);
    else
        std::snprintf(buf, sizeof buf, " [%.2f MiB]", mib);
    return q + buf;
}

int run(const Program& prog, const std::string& address, const Fields& f) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    Address a = parse_address(address);
    auto store = open_store(paths, prog.mysql);
    Domain d = require_domain(paths, *store, a.domain);
    // an inactive mailbox (vdeloldusers, vmoduser --inactive) is shown too, and says so
    const FoundUser found = require_any_user(*store, d, a.local);
    const UserRecord& u = found.user;
    const bool active = found.active;
    std::vector<LoginRecord> logins = store->user_logins(d.ref(), u);
    const MailboxPlace place = mailbox_place(paths, *store, d.ref(), u.name);  // hosts sharing the database
    std::error_code ec;
    bool home_ok = std::filesystem::is_directory(std::filesystem::path(u.dir) / "Maildir", ec);
    MaildirUsage use = home_ok ? maildir_usage(std::filesystem::path(u.dir) / "Maildir") : MaildirUsage{};
    if (rep.json()) {
        Json j = Json::object();
        j.set("address", a.str()).set("name", u.name).set("domain", d.name);
        j.set("hash", hash_kind(u.passwd));
        j.set("uid", u.uid_flags);
        j.set("gid", u.gid_flags);
        Json flags = Json::array();
        for (auto& fl : user_flags())
            if (u.gid_flags & fl.bit) flags.push(std::string(fl.name));
        j.set("flags", std::move(flags));
        j.set("gecos", u.gecos);
        j.set("dir", u.dir);
        j.set("dir_exists", home_ok);
        j.set("quota", u.quota);
        Quota q = parse_quota(u.quota);
        j.set("quota_bytes", q.bytes ? Json(*q.bytes) : Json());
        j.set("quota_count", q.count ? Json(*q.count) : Json());
        j.set("usage_bytes", use.bytes);
        j.set("usage_count", use.count);
        j.set("active", active);
        Json last = Json::object();
        for (const auto& l : logins) {
            Json one = Json::object();
            one.set("ip", l.ip).set("time", l.time);
            last.set(l.service, std::move(one));
        }
        j.set("logins", std::move(last));
        j.set("store", std::string(store->backend()));
        j.set("host", place.host.empty() ? Json() : Json(place.host));
        j.set("local", place.local);
        rep.object(j);
        return 0;
    }
    bool all = f.all || !f.any();
    if (all || f.name) rep.line(label("name", a.str()));
    if (all || f.passwd) rep.line(label("passwd", u.passwd + " (" + hash_kind(u.passwd) + ")"));
    if (all || f.uid) rep.line(label("uid", std::to_string(u.uid_flags)));
    if (all || f.gid) {
        rep.line(label("gid", std::to_string(u.gid_flags)));
        if (u.gid_flags == 0) rep.line(std::string(16, ' ') + "-all services available");
        for (auto& fl : user_flags())
            if (u.gid_flags & fl.bit) rep.line(std::string(16, ' ') + "-" + std::string(fl.text));
    }
    if (all || f.gecos) rep.line(label("gecos", u.gecos));
    if (all || f.dir)
        rep.line(label("dir", u.dir + (!place.local ? " (on host " + place.host + ")" : home_ok ? "" : " (missing)")));
    if (all || f.quota) {
        rep.line(label("quota", quota_text(u.quota)));
        rep.line(label("curr quota", std::to_string(use.bytes) + "S," + std::to_string(use.count) + "C"));
    }
    if (all) {
        rep.line(label("Account", active ? "active" : "inactive (vmoduser --active)"));
        for (const auto& l : logins)  // IndiMail's lastauth: "add" is the mailbox's creation
            rep.line(label(l.service == "add" ? "added" : ("last " + l.service).c_str(),
                           local_time_text(l.time) + (l.ip.empty() ? "" : " from " + l.ip)));
        rep.line(label("Mail store", std::string(store->backend())));
        if (!place.host.empty()) rep.line(label("Host", place.host + (place.local ? " (this host)" : "")));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vuserinfo");
    std::string address;
    Fields f;
    CLI::App app{"Show a mailbox: password hash, flags, comment, home directory, quota and usage.", "vuserinfo"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("ADDRESS", address, "The mailbox: user@domain")->required();
    app.add_flag("-a,--all", f.all, "Every field (the default)");
    app.add_flag("-n,--name", f.name, "The address");
    app.add_flag("-p,--passwd", f.passwd, "The password hash and its method");
    app.add_flag("-u,--uid", f.uid, "pw_uid");
    app.add_flag("-g,--gid", f.gid, "pw_gid and the restriction flags it holds");
    app.add_flag("-c,--comment", f.gecos, "The comment (gecos)");
    app.add_flag("-d,--dir", f.dir, "The home directory");
    app.add_flag("-q,--quota", f.quota, "The quota and the Maildir's current size");
    add_common_options(app, prog.common, opt_json);
    add_mysql_options(app, prog);
    app.footer(
        "Exit status: 0 shown; 64 usage; 65 bad address; 67 no such mailbox; 68 no such domain. See\n"
        "vuserinfo(8).");
    app.callback([&] { prog.action = [&] { return run(prog, address, f); }; });
    prog.positional_completions[&app] = complete_addresses;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vuserinfo
