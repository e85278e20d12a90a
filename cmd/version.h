#ifndef FERRY_VERSION_H
#define FERRY_VERSION_H

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0"
#endif

const char *ferry_version(void);

#endif
