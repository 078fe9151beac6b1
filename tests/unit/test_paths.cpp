#include <catch2/catch.hpp>

#include "qvmail/paths.hpp"

using qv::Env;
using qv::Paths;

TEST_CASE("every location derives from QMAILHOME by default", "[paths]") {
    Paths p = Paths::from(Env(qv::Env::Vars{{"QMAILHOME", "/srv/mail"}}));
    CHECK(p.qmailhome == "/srv/mail");
    CHECK(p.controldir == "/srv/mail/control");
    CHECK(p.tcp_file == "/srv/mail/etc/tcp.smtp");
    CHECK(p.etc_dir() == "/srv/mail/etc");
    CHECK(p.assigndir == "/srv/mail/users");
    CHECK(p.domaindir == "/srv/mail");
    CHECK(p.domains_dir() == "/srv/mail/domains");
    CHECK(p.base_path == "/srv/mail/home");
    CHECK(p.queuedir == "/srv/mail/queue");
    CHECK(p.servicedir == "/srv/mail/service");
    CHECK(p.lock_file() == "/srv/mail/.qvmail.lock");
    CHECK(p.control("rcpthosts") == "/srv/mail/control/rcpthosts");
}

TEST_CASE("the compiled default applies when QMAILHOME is unset or empty", "[paths]") {
    CHECK(Paths::from(Env(qv::Env::Vars{})).qmailhome == qv::compiled_qmailhome());
    CHECK(Paths::from(Env(qv::Env::Vars{{"QMAILHOME", ""}})).qmailhome == qv::compiled_qmailhome());
}

TEST_CASE("relative variables are taken under QMAILHOME, absolute ones as they are", "[paths]") {
    Paths p = Paths::from(Env(qv::Env::Vars{{"QMAILHOME", "/q"},
                                            {"CONTROLDIR", "control2"},
                                            {"TCP_FILE", "/etc/tcp/tcp.smtp"},
                                            {"DOMAINDIR", "/var/vmail/"},
                                            {"BASE_PATH", "mailhomes/"}}));
    CHECK(p.controldir == "/q/control2");
    CHECK(p.tcp_file == "/etc/tcp/tcp.smtp");
    CHECK(p.etc_dir() == "/etc/tcp");
    CHECK(p.domaindir == "/var/vmail");
    CHECK(p.domains_dir() == "/var/vmail/domains");
    CHECK(p.base_path == "/q/mailhomes");
}

TEST_CASE("a relative QMAILHOME is made absolute", "[paths]") {
    Paths p = Paths::from(Env(qv::Env::Vars{{"QMAILHOME", "scratch/home"}}));
    CHECK(p.qmailhome.is_absolute());
    CHECK(p.qmailhome.filename() == "home");
}

TEST_CASE("display shows paths under QMAILHOME relative to it", "[paths]") {
    Paths p = Paths::from(Env(qv::Env::Vars{{"QMAILHOME", "/q"}}));
    CHECK(p.display("/q/etc/tcp.smtp") == "etc/tcp.smtp");
    CHECK(p.display("/elsewhere/tcp.smtp") == "/elsewhere/tcp.smtp");
    CHECK(p.display("/qq/x") == "/qq/x");
}

TEST_CASE("relay grants live beside tcp.smtp, whatever OPEN_SMTP says", "[paths]") {
    // IndiMail's service files set OPEN_SMTP to the path of their own file; it only switches grants on
    Paths p = Paths::from(Env(qv::Env::Vars{{"QMAILHOME", "/q"}, {"OPEN_SMTP", "/etc/indimail/tcp/open-smtp"}}));
    CHECK(p.open_smtp == "/q/etc/open-smtp");
    p = Paths::from(Env(qv::Env::Vars{{"QMAILHOME", "/q"}, {"TCP_FILE", "/etc/tcp/tcp.smtp"}}));
    CHECK(p.open_smtp == "/etc/tcp/open-smtp");
}
