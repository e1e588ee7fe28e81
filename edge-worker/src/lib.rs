use worker::*;
