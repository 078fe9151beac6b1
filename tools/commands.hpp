// The commands of the qvmail multi-call binary. Each one is one source file whose main() reads like its
// man page: parse, call the library, print. tools/main.cpp picks one by the name it was run as.
#pragma once

namespace qv::cmd_qmailctl {
int main(int argc, char** argv);
}
namespace qv::cmd_vadddomain {
int main(int argc, char** argv);
}
namespace qv::cmd_vdeldomain {
int main(int argc, char** argv);
}
namespace qv::cmd_vdominfo {
int main(int argc, char** argv);
}
namespace qv::cmd_vmoddomain {
int main(int argc, char** argv);
}
namespace qv::cmd_vadduser {
int main(int argc, char** argv);
}
namespace qv::cmd_vdeluser {
int main(int argc, char** argv);
}
namespace qv::cmd_vmoduser {
int main(int argc, char** argv);
}
namespace qv::cmd_vpasswd {
int main(int argc, char** argv);
}
namespace qv::cmd_vuserinfo {
int main(int argc, char** argv);
}
namespace qv::cmd_clearopensmtp {
int main(int argc, char** argv);
}
namespace qv::cmd_vchkpass {
int main(int argc, char** argv);
}
namespace qv::cmd_valias {
int main(int argc, char** argv);
}
namespace qv::cmd_vsetuserquota {
int main(int argc, char** argv);
}
namespace qv::cmd_vaddaliasdomain {
int main(int argc, char** argv);
}
namespace qv::cmd_vrenameuser {
int main(int argc, char** argv);
}
namespace qv::cmd_vrenamedomain {
int main(int argc, char** argv);
}
namespace qv::cmd_vdeloldusers {
int main(int argc, char** argv);
}
namespace qv::cmd_vlimit {
int main(int argc, char** argv);
}
namespace qv::cmd_vcfilter {
int main(int argc, char** argv);
}
