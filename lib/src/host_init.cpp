// Laying out a mail host. See host_init.hpp.
#include "qvmail/host_init.hpp"

#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "qvmail/address.hpp"
#include "qvmail/atomic_file.hpp"
#include "qvmail/cdb_sources.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/process.hpp"
#include "qvmail/queue.hpp"
#include "qvmail/service.hpp"
#include "qvmail/text.hpp"

namespace qv {

namespace fs = std::filesystem;

const std::vector<SystemAccount>& system_accounts() {
    static const std::vector<SystemAccount> accounts = {
        {"indimail", "indimail", "qvmail virtual domains and their mail"},
        {"qmaild", "nofiles", "qvmail SMTP server"},
        {"qmailq", "qmail", "qvmail queue"},
        {"qmails", "qmail", "qvmail queue manager"},
        {"qmailr", "qmail", "qvmail remote delivery"},
    };
    return accounts;
}

const std::vector<std::string_view>& system_groups() {
    static const std::vector<std::string_view> groups = {"indimail", "nofiles", "qmail"};
    return groups;
}

std::string normalize_hostname(std::string_view name) {
    try {
        return normalize_domain(name);
    } catch (const Error& e) {
        throw Error(Exit::dataerr, "--hostname: " + std::string(e.what()));
    }
}

std::string machine_hostname() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
    std::string name = buf;
    if (name.find('.') != std::string::npos) return name;
    addrinfo hints{};
    hints.ai_flags = AI_CANONNAME;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(name.c_str(), nullptr, &hints, &res) == 0 && res) {
        if (res->ai_canonname && std::strchr(res->ai_canonname, '.')) name = res->ai_canonname;
        ::freeaddrinfo(res);
    }
    return name;
}

namespace {

// The file's text, or nullopt when there is none.
std::optional<std::string> file_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void run_admin(const std::vector<std::string>& argv) {
    run_command(argv, Exit::cantcreat, "to create the system accounts (package passwd)", 60);
}

// 77 when it is a matter of permission (as the queue's own steps say), else 73 or 74
Exit create_code(int e) {
    return e == EACCES || e == EPERM ? Exit::noperm : exit_for_create_errno(e);
}

class Layout {
public:
    Layout(const Paths& paths, bool dry_run, HostInitReport& report) : paths_(paths), dry_(dry_run), r_(report) {}

    void accounts() {
        if (::geteuid() != 0) {
            r_.warnings.push_back("not run as root: no system accounts are created, and everything belongs to uid " +
                                  std::to_string(::geteuid()));
            return;
        }
        for (std::string_view g : system_groups()) {
            if (::getgrnam(std::string(g).c_str())) continue;
            r_.steps.push_back("create the system group " + std::string(g));
            if (!dry_) run_admin({"groupadd", "--system", std::string(g)});
        }
        for (const auto& a : system_accounts()) {
            if (::getpwnam(std::string(a.name).c_str())) continue;
            r_.steps.push_back("create the system user " + std::string(a.name) + " (group " + std::string(a.group) +
                               ", no shell, no password)");
            if (!dry_)
                run_admin({"useradd", "--system", "--gid", std::string(a.group), "--home-dir", paths_.qmailhome.string(),
                           "--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", std::string(a.purpose),
                           std::string(a.name)});
        }
    }

    // A directory, made (mode 0755, the caller's) when missing; one that is there is left as it is.
    void directory(const fs::path& dir) {
        if (made_.count(dir)) return;
        made_.insert(dir);
        if (!dir.parent_path().empty() && dir.parent_path() != dir) directory(dir.parent_path());
        struct stat st {};
        if (::stat(dir.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) throw Error(Exit::cantcreat, dir.string() + " exists and is not a directory");
            return;
        }
        if (errno != ENOENT) throw sys_error(exit_for_create_errno(errno), "cannot look up", dir, errno);
        r_.steps.push_back("create directory " + dir.string());
        if (dry_) return;
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw sys_error(create_code(errno), "cannot create", dir, errno);
        if (::chmod(dir.c_str(), 0755) != 0) throw sys_error(create_code(errno), "cannot set the mode of", dir, errno);
        sync_directory(dir.parent_path());
    }

    // A file with `content`, written (atomically) when missing; one that is there is never rewritten,
    // and is noted when it differs from the default.
    void file(const fs::path& path, const std::string& content, mode_t mode = 0644) {
        directory(path.parent_path());
        if (auto now = file_text(path)) {
            if (*now != content) r_.kept.push_back(paths_.display(path));
            return;
        }
        if (path_exists(path)) throw Error(Exit::cantcreat, path.string() + " exists and cannot be read");
        r_.steps.push_back("write " + paths_.display(path));
        if (dry_) return;
        if (!create_file(path, content, mode)) r_.kept.push_back(paths_.display(path));  // written meanwhile
    }

private:
    const Paths& paths_;
    bool dry_;
    HostInitReport& r_;
    std::set<fs::path> made_;
};

// "mail.example.com" -> "example.com"; a name of two labels or fewer is its own domain.
std::string domain_of(const std::string& host) {
    std::size_t dot = host.find('.');
    if (dot == std::string::npos || host.find('.', dot + 1) == std::string::npos) return host;
    return host.substr(dot + 1);
}

std::string first_line(const std::string& text) {
    std::string l = text.substr(0, text.find('\n'));
    while (!l.empty() && (l.back() == ' ' || l.back() == '\t' || l.back() == '\r')) l.pop_back();
    return l;
}

constexpr std::string_view kTcpSmtp =
    "# Who may connect to SMTP, and who may relay (RELAYCLIENT set): tcprules(1) lines, compiled into\n"
    "# tcp.smtp.cdb by qmailctl cdb. The mail host itself relays; everyone else may send mail to the\n"
    "# domains in control/rcpthosts.\n"
    "127.0.0.1:allow,RELAYCLIENT=\"\"\n"
    ":allow\n";

}  // namespace

HostInitReport init_host(const Paths& paths, const HostInitOptions& opts) {
    HostInitReport report;
    const std::string wanted = opts.hostname ? normalize_hostname(*opts.hostname) : std::string();
    Layout lay(paths, opts.dry_run, report);
    lay.accounts();

    // the host's name: control/me when an administrator has set it, else the one given or found
    auto me_now = file_text(paths.control("me"));
    if (me_now && first_line(*me_now).empty()) {
        report.warnings.push_back("control/me is empty: the mail programs have no name for this host; edit it");
        me_now.reset();  // the defaults below still get a name
    }
    std::string host = me_now ? first_line(*me_now) : (opts.hostname ? wanted : ascii_lower(machine_hostname()));
    if (me_now && opts.hostname && host != wanted)
        report.warnings.push_back("control/me names this host " + host + ": kept, --hostname " + wanted +
                                  " is not applied (edit control/me to rename the host)");
    if (!me_now && host.find('.') == std::string::npos)
        report.warnings.push_back("this host's name, " + host +
                                  ", is not fully qualified: give --hostname, or edit control/me");
    report.hostname = host;

    for (const fs::path& d : {paths.qmailhome, paths.controldir, paths.etc_dir(), paths.assigndir, paths.domains_dir(),
                              paths.base_path, paths.servicedir, paths.queue_socket.parent_path()})
        lay.directory(d);
    lay.file(paths.control("me"), host + "\n");
    lay.file(paths.control("defaultdomain"), domain_of(host) + "\n");
    lay.file(paths.control("rcpthosts"), host + "\n");
    lay.file(paths.control("databytes"), "26214400\n");  // 25 MB, the common limit of the big providers
    lay.file(paths.control("concurrencylocal"), "10\n");
    lay.file(paths.control("concurrencyremote"), "20\n");

    // the SMTP access rules, compiled when the cdb is missing or older
    lay.file(paths.tcp_file, std::string(kTcpSmtp));
    for (const CdbSource& src : cdb_sources(paths)) {
        if (src.source != paths.tcp_file) continue;
        if (path_exists(src.source) && cdb_is_current(src)) break;
        if (opts.dry_run) {
            report.steps.push_back("compile " + paths.display(src.source) + " into " + paths.display(src.target));
            break;
        }
        try {
            build_cdb(src, CdbBuildOptions{});
            report.steps.push_back("compile " + paths.display(src.source) + " into " + paths.display(src.target));
        } catch (const Error& e) {
            // the administrator's rules: the old cdb stays, and qmailctl cdb says the same until they are fixed
            report.warnings.push_back(std::string(e.what()) + " (" + paths.display(src.target) + " left as it was)");
        }
        break;
    }

    // the services' variables (as envdir reads them): submission on port 587 takes mail only after AUTH
    for (std::string_view service : {kSendService, std::string_view("qmail-smtpd.25"), std::string_view("qmail-smtpd.587")})
        lay.directory(paths.servicedir / std::string(service) / "variables");
    lay.file(service_variable_file(paths, "qmail-smtpd.587", "REQUIREAUTH"), "1\n");

    // the queue, with notqmail's modes and owners (the accounts above)
    QueueDirs dirs(paths.queuedir);
    QueueOwners owners = queue_owners();
    if (!opts.dry_run)
        for (const auto& m : owners.missing) report.warnings.push_back("no " + m + ": the queue belongs to the caller");
    lay.directory(dirs.root().parent_path());
    // qmail-queued's socket directory, its own: the queue's owner makes the socket there
    // (only QMAILHOME/run: a QUEUED_SOCKET elsewhere, /run or /tmp, is in a directory that is not ours)
    const fs::path run = paths.queue_socket.parent_path();
    if (run == paths.qmailhome / "run" &&
        std::find(owners.missing.begin(), owners.missing.end(), "user qmailq") == owners.missing.end()) {
        struct stat st {};
        if (::stat(run.c_str(), &st) == 0 && (st.st_uid != owners.q.uid || st.st_gid != owners.q.gid)) {
            report.steps.push_back("give " + run.string() + " to uid " + std::to_string(owners.q.uid) + ", gid " +
                                   std::to_string(owners.q.gid) + " (qmail-queued's socket)");
            if (!opts.dry_run) give_to(-1, run, owners.q);
        }
    }
    if (opts.dry_run && !path_exists(dirs.root()))
        report.steps.push_back("lay out the queue in " + dirs.root().string() + " (qmailctl queue init)");
    else
        for (auto& s : init_queue(dirs, owners, opts.dry_run)) report.steps.push_back(std::move(s));
    return report;
}

}  // namespace qv
