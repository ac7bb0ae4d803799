/* zerowaste/zerowaste.h - every public header of zerowaste. */
#ifndef ZEROWASTE_H
#define ZEROWASTE_H

#include <zerowaste/common.h>
#include <zerowaste/mem.h>
#include <zerowaste/obj.h>
#include <zerowaste/gc.h>
#include <zerowaste/measure.h>
#include <zerowaste/raw.h>
#include <zerowaste/trace.h>
#include <zerowaste/capture.h>

#endif /* ZEROWASTE_H */
