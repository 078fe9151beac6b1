#include "qvmail/paths.hpp"

#include <charconv>
#include <cstdlib>

#include "qvmail/error.hpp"

#ifndef QV_SBINDIR
#define QV_SBINDIR "/usr/sbin"
#endif

#ifndef QV_DEFAULT_QMAILHOME
#define QV_DEFAULT_QMAILHOME "/var/indimail"
#endif

namespace qv {

Env::Env() = default;
Env::Env(Vars vars) : vars_(std::move(vars)) {}

std::optional<std::string> Env::get(std::string_view name) const {
    if (vars_) {
        auto it = vars_->find(std::string(name));
        if (it == vars_->end() || it->second.empty()) return std::nullopt;
        return it->second;
    }
    const char* v = std::getenv(std::string(name).c_str());
    if (!v || !*v) return std::nullopt;
    return std::string(v);
}

const char* compiled_qmailhome() noexcept {
    return QV_DEFAULT_QMAILHOME;
}

Paths Paths::from(const Env& env) {
    Paths p;
    p.qmailhome = fs::absolute(env.get("QMAILHOME").value_or(QV_DEFAULT_QMAILHOME)).lexically_normal();
    auto under_home = [&](std::string_view var, const fs::path& dflt) {
        auto v = env.get(var);
        fs::path r = v ? fs::path(*v) : dflt;
        if (r.is_relative()) r = p.qmailhome / r;
        return r.lexically_normal();
    };
    p.controldir = under_home("CONTROLDIR", "control");
    p.tcp_file = under_home("TCP_FILE", "etc/tcp.smtp");
    p.assigndir = under_home("ASSIGNDIR", "users");
    p.domaindir = under_home("DOMAINDIR", ".");
    p.base_path = under_home("BASE_PATH", "home");
    p.queuedir = under_home("QUEUEDIR", "queue");
    p.servicedir = under_home("SERVICEDIR", "service");
    p.queue_socket = under_home("QUEUED_SOCKET", "run/qmail-queued.sock");
    p.qmailqueue = env.get("QMAILQUEUE");
    // Beside tcp.smtp, as IndiMail keeps it: OPEN_SMTP only switches grants on (vchkpass). IndiMail's
    // service files set it to their own file's path, which must not send grants where clearopensmtp and
    // qmailctl cdb never look.
    p.open_smtp = p.tcp_file.parent_path() / "open-smtp";
    p.relayclients = p.controldir / "relayclients";
    if (auto alt = env.get("RELAYCLIENTS")) p.relayclients = (*alt)[0] == '/' ? fs::path(*alt) : p.controldir / *alt;
    p.bouncerules = env.get("BOUNCERULES");
    p.outgoingip = env.get("OUTGOINGIP");
    p.smtproute = env.get("SMTPROUTE");
    p.smtproutesfile = p.controldir / env.get("SMTPROUTESFILE").value_or("smtproutes");  // an absolute one replaces
    p.qregex = env.get("QREGEX").has_value();
    if (auto m = env.get("RELAY_CLEAR_MINUTES")) {
        unsigned v = 0;
        auto r = std::from_chars(m->data(), m->data() + m->size(), v);
        if (r.ec != std::errc() || r.ptr != m->data() + m->size() || v == 0)
            throw Error(Exit::config, "RELAY_CLEAR_MINUTES=" + *m + " is not a number of minutes");
        p.relay_clear_minutes = v;
    }
    p.sbindir = QV_SBINDIR;
    p.password_hash = env.get("PASSWORD_HASH");
    p.mysql_default_file = env.get("MYSQL_READ_DEFAULT_FILE");
    p.mysql_default_group = env.get("MYSQL_READ_DEFAULT_GROUP");
    p.mysql_database = env.get("MYSQL_DATABASE");
    // lexically_normal() of "home/." leaves a trailing separator; drop it for clean joins.
    for (fs::path* d :
         {&p.qmailhome, &p.controldir, &p.assigndir, &p.domaindir, &p.base_path, &p.queuedir, &p.servicedir}) {
        if (!d->has_filename() && d->has_parent_path() && *d != d->root_path()) *d = d->parent_path();
    }
    return p;
}

std::string Paths::display(const fs::path& path) const {
    auto rel = path.lexically_relative(qmailhome);
    if (!rel.empty() && *rel.begin() != "..") return rel.string();
    return path.string();
}

}  // namespace qv
